"""Summaries per second of the built summarize packs, as a worker runs them, on the same held-out notes.

    .venv/bin/python bench/summarize_packs.py [--notes 64] [--packs packs] [--threads 0]

For each pack in ``summarizer`` and ``summarizer-extractive`` that is present, and each of its CPU variants,
the pack's runtime (``SummarizerRuntime`` or ``ExtractiveRuntime``, the classes the worker loads) summarizes
the first ``--notes`` held-out MTSamples notes once to warm up, then once timed, in this one process.
Prints notes/s, the ratio of each to the slowest, and ROUGE-L of those summaries against the descriptions;
writes JSON to bench/results/summarize_packs.json. No note text is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from nightclerk.exporters.datasets import mtsamples_path
from nightclerk.exporters.generation.rouge import rouge
from nightclerk.exporters.generation.summary_data import mtsamples_pairs, split
from nightclerk.shared.manifest import read_manifest
from nightclerk.workers.device import Placement
from nightclerk.workers.extractive import ExtractiveRuntime
from nightclerk.workers.generation.summarizer import SummarizerRuntime

PACKS = ("summarizer", "summarizer-extractive")
CPU = Placement("cpu", ["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=64)
    parser.add_argument("--packs", type=Path, default=Path("packs"))
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    path = mtsamples_path()
    if path is None:
        raise SystemExit("MTSamples notes.csv not found; set NIGHTCLERK_SHARED_DATA")
    held_out = split(mtsamples_pairs(path), "eval")[: args.notes]
    texts, references = [p.text for p in held_out], [p.reference for p in held_out]
    kinds = ["ehr_note"] * len(texts)
    rows: list[dict[str, Any]] = []
    for name in PACKS:
        if not (args.packs / name).is_dir():
            print(f"{name}: not built, skipped")
            continue
        manifest = read_manifest(args.packs / name)
        runtime_class = ExtractiveRuntime if manifest.extractive is not None else SummarizerRuntime
        for variant in manifest.variants:
            if variant.device == "cuda":
                continue
            runtime = runtime_class(args.packs / name, CPU, precision=variant.precision, threads=args.threads)
            runtime.summarize(texts[:4], kinds[:4])  # warm-up: sessions, allocator, segmenter
            started = time.perf_counter()
            result = runtime.summarize(texts, kinds)
            seconds = time.perf_counter() - started
            scores = rouge([s or "" for s in result.summaries], references)
            rows.append(
                {
                    "pack": name,
                    "precision": variant.precision,
                    "notes": len(texts),
                    "seconds": round(seconds, 2),
                    "notes_per_s": round(len(texts) / seconds, 2),
                    "rougeL": round(scores.rouge_l, 4),
                }
            )
            rate = len(texts) / seconds
            print(f"{name} {variant.precision}: {rate:.2f} notes/s, ROUGE-L {scores.rouge_l:.3f}")
    if not rows:
        raise SystemExit("no summarize pack built: nightclerk models ensure-demo")
    slowest = min(row["notes_per_s"] for row in rows)
    print("\n| pack | variant | notes/s | x slowest | ROUGE-L |\n| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        row["ratio_to_slowest"] = round(row["notes_per_s"] / slowest, 2)
        figures = f"{row['notes_per_s']:.2f} | {row['ratio_to_slowest']:.1f} | {row['rougeL']:.3f}"
        print(f"| {row['pack']} | {row['precision']} | {figures} |")
    out = Path("bench/results/summarize_packs.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "threads": args.threads}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
