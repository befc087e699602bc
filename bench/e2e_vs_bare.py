"""End-to-end throughput (push -> Redis -> worker -> store) against bare in-process ONNX Runtime.

    .venv/bin/python bench/e2e_vs_bare.py [--docs 2000] [--rounds 3] [--pack ehr-specialty]

Same pack, same documents, same machine, one run. Each round times the bare loop (the worker's own
ClassifierRuntime called in this process on all documents at once: tokenization, length sorting, batching,
inference) and then the whole path with a real worker process and a fresh SQLite store (the worker is started
and its packs loaded before the clock starts). Prints medians, the min-max spread and the ratio; writes JSON
to bench/results/.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import onnxruntime as ort
import redis

from nightclerk.cli.csv_head import csv_head
from nightclerk.cli.worker_process import WorkerProcess
from nightclerk.exporters.datasets import mtsamples_path, nestor_path
from nightclerk.producers.mapping import load_preset
from nightclerk.producers.push import push_files
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.shared.store import ResultStore
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import choose_placement, cpu_count

RESULTS = Path(__file__).resolve().parent / "results"
QUEUE = "nightclerk-bench"


def pick_input(pack: str | None) -> tuple[Path, str, str, str]:
    """(file, mapping preset, text column, pack): MTSamples notes when present, nestor tickets otherwise."""
    notes = mtsamples_path()
    if notes is not None and pack in (None, "ehr-specialty"):
        return notes, "mtsamples", "transcription", "ehr-specialty"
    return nestor_path(Path("var/data/nestor")), "nestor", "OriginalShorttext", "ticket-system"


def bare_docs_per_s(settings: Settings, pack: str, texts: list[str]) -> float:
    placement = choose_placement(settings.device, ort.get_available_providers())
    runtime = ClassifierRuntime(
        settings.packs_dir / pack,
        placement,
        precision=settings.precision,
        threads=settings.intra_op_threads,
        token_budget=settings.batch_token_budget,
        max_batch_docs=settings.max_batch_docs,
    )
    runtime.classify(texts[:64])  # warm-up, as the worker's first chunk would be
    started = time.perf_counter()
    runtime.classify(texts)
    return len(texts) / (time.perf_counter() - started)


def e2e_docs_per_s(settings: Settings, source: Path, preset: str, work: Path, expected: int) -> float:
    database = work / "results.db"
    overrides = {
        "queue": QUEUE,
        "database_url": f"sqlite:///{database}",
        "log_json": "true",
        "packs_dir": str(settings.packs_dir.resolve()),
    }
    run_settings = settings.with_overrides(**overrides)
    redis.Redis.from_url(settings.redis_url).delete(QUEUE)
    store = ResultStore(run_settings.resolved_database_url)
    store.create_schema()
    with WorkerProcess(overrides, work / "worker.log"):
        started = time.perf_counter()
        summary = push_files(
            [source],
            load_preset(preset),
            ["classify"],
            run_settings,
            rejects_path=work / "rejects.jsonl",
            progress=False,
        )
        if summary.accepted != expected:
            raise SystemExit(f"expected {expected} accepted documents, got {summary.accepted}")
        while store.count() < expected:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    store.close()
    return expected / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pack", default=None)
    args = parser.parse_args()
    configure_logging(json=False, level="WARNING")
    settings = get_settings()
    full, preset, text_column, pack = pick_input(args.pack)

    with tempfile.TemporaryDirectory(prefix="nightclerk-bench-") as tmp:
        source = csv_head(full, Path(tmp) / full.name, args.docs)
        with source.open(newline="", encoding="utf-8") as handle:
            texts = [row[text_column] for row in csv.DictReader(handle)]
        bare, e2e = [], []
        for round_ in range(args.rounds):
            bare.append(bare_docs_per_s(settings, pack, texts))
            work = Path(tmp) / f"round{round_}"
            work.mkdir()
            e2e.append(e2e_docs_per_s(settings, source, preset, work, len(texts)))
            print(
                f"round {round_ + 1}: bare {bare[-1]:.1f} docs/s, end to end {e2e[-1]:.1f} docs/s, "
                f"ratio {e2e[-1] / bare[-1]:.3f}",
                flush=True,
            )

    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_cores": cpu_count(),
            "platform": platform.platform(),
            "providers": ort.get_available_providers(),
        },
        "pack": pack,
        "documents": len(texts),
        "rounds": args.rounds,
        "bare_docs_per_s": bare,
        "e2e_docs_per_s": e2e,
        "bare_median": statistics.median(bare),
        "e2e_median": statistics.median(e2e),
        "ratio_of_medians": statistics.median(e2e) / statistics.median(bare),
        "ratios": [e / b for e, b in zip(e2e, bare, strict=True)],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"e2e_vs_bare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(f"| {pack}, {len(texts)} docs, {cpu_count()} cores | median docs/s | min-max |")
    print("| --- | --- | --- |")
    print(
        f"| bare ONNX Runtime (in process) | {report['bare_median']:.1f} | {min(bare):.1f}-{max(bare):.1f} |"
    )
    print(f"| nightclerk end to end | {report['e2e_median']:.1f} | {min(e2e):.1f}-{max(e2e):.1f} |")
    print(
        f"| ratio (target >= 0.90) | {report['ratio_of_medians']:.3f} | "
        f"{min(report['ratios']):.3f}-{max(report['ratios']):.3f} |"
    )
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
