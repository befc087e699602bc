"""``make bench``: nightclerk against the limit and against what users would build instead, in one run.

    .venv/bin/python -m bench.run [--docs 300] [--reps 3] [--sections limit,e2e,naive,ray,generation,growth]
                                  [--growth 1000,10000,100000] [--device auto|cpu|cuda] [--quick]

On the same machine, the same documents (the first ``--docs`` usable MTSamples notes, PubMed abstracts and
nestor work orders) and the same packs (ehr-specialty, lit-pubtype, ticket-system):

1. the limit: bare in-process ONNX Runtime per pack variant, at 128 and 256 tokens (:mod:`bench.limit`);
2. nightclerk end to end with 1 and 2 worker processes, and its ratio to (1) (:mod:`bench.endtoend`);
3. the naive build: a Celery task per document running a ``transformers`` pipeline (:mod:`bench.naive`);
4. Ray Data ``map_batches`` with an actor pool running the same pack (:mod:`bench.ray_data`);
5. generation: the worker's decoder runtime against ``transformers`` ``generate`` (:mod:`bench.generation`);
6. cost of growth: 1k / 10k / 100k documents queued (:mod:`bench.growth`);
7. on a GPU, the same with the CUDA provider, fp16 and IO binding (``--device auto`` picks it up).

Each figure is the median of ``--reps`` repetitions with the min-max spread. Writes
``bench/results/bench-<cpu|cuda>.md`` and ``.json`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnxruntime as ort
import sqlalchemy as sa

from bench import machine, report
from bench.corpora import TICKET_SCALE, Corpus, load_corpora, load_corpus, sources
from bench.endtoend import run_end_to_end
from bench.generation import run_generation
from bench.growth import run_growth
from bench.limit import run_limit, runtime_for
from bench.naive import run_naive
from bench.ray_data import run_ray
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement, choose_placement, cpu_count

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SECTIONS = ("limit", "e2e", "naive", "ray", "generation", "growth")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "nightclerk_bench"


def say(line: str) -> None:
    print(line, flush=True)


def _store_url(wanted: str, work: Path) -> str:
    """``wanted`` when it answers; else a SQLite file (said, and recorded in the results)."""
    try:
        engine = sa.create_engine(wanted)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return wanted
    except Exception as exc:
        say(f"store: {wanted.split('@')[-1]} unreachable ({type(exc).__name__}); using SQLite instead")
        return f"sqlite:///{work / 'results.db'}"


class Bare:
    """The limit for one corpus with the variant the worker picks, kept loaded between repetitions."""

    def __init__(self, settings: Settings, placement: Placement) -> None:
        self.settings, self.placement = settings, placement
        self.runtimes: dict[str, ClassifierRuntime] = {}

    def __call__(self, corpus: Corpus) -> float:
        runtime = self.runtimes.get(corpus.pack)
        if runtime is None:
            runtime = runtime_for(self.settings, self.placement, corpus.pack, self.settings.precision, 0)
            runtime.classify(corpus.texts[:64])
            self.runtimes[corpus.pack] = runtime
        started = time.perf_counter()
        runtime.classify(corpus.texts)
        return len(corpus.texts) / (time.perf_counter() - started)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--docs", type=int, default=300, help=f"documents per corpus (work orders: {TICKET_SCALE}x as many)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--corpora", default="notes,abstracts,tickets")
    parser.add_argument("--growth", default="1000,10000,100000", help="documents queued, per level")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--database-url", default=POSTGRES, help="the store (PostgreSQL; SQLite if it fails)")
    parser.add_argument("--naive-broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--generation-rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200 docs, 1 rep, growth 1000: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.reps, args.growth, args.generation_rounds = 200, 1, "1000", 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(json=False, level="WARNING")
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    settings = get_settings()
    placement = choose_placement(args.device, ort.get_available_providers())
    cores = cpu_count()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine.describe(settings.redis_url),
        "device": placement.device,
        "docs": args.docs,
        "reps": args.reps,
        "sections": sections,
    }
    say(f"machine: {machine.one_line(results['machine'])}; device {placement.device}")

    with tempfile.TemporaryDirectory(prefix="nightclerk-bench-") as tmp:
        work = Path(tmp)
        corpora, missing = load_corpora(settings.data_dir / "data", args.docs, work, args.corpora.split(","))
        for line in missing:
            say(line)
        results["corpora"] = {
            c.name: {"title": c.title, "pack": c.pack, "docs": len(c.texts)} for c in corpora
        }
        results["missing"] = missing
        database_url = _store_url(args.database_url, work)
        results["store"] = database_url.split("://")[0]
        bare = Bare(settings, placement)

        if "limit" in sections:
            say("1. the limit: bare ONNX Runtime in process")
            rows = run_limit(
                corpora,
                settings,
                placement,
                reps=args.reps,
                token_lengths=(128, 256),
                say=say,
            )
            results["limit"] = [row.as_dict() for row in rows]
        if "e2e" in sections:
            say("2. nightclerk end to end")
            e2e = run_end_to_end(
                corpora,
                settings,
                work,
                worker_counts=(1, 2) if placement.device == "cpu" else (1,),
                cores=cores,
                reps=args.reps,
                database_url=database_url,
                schema=SCHEMA,
                bare=bare,
                say=say,
            )
            results["e2e"] = [row.as_dict() for row in e2e]
        if "naive" in sections:
            say("3. the naive build: Celery task per document, transformers pipeline in PyTorch")
            naive, checks = run_naive(
                corpora,
                settings,
                placement,
                work,
                models_dir=settings.data_dir / "models",
                concurrencies=tuple(sorted({cores, 1}, reverse=True)),
                reps=args.reps,
                broker_url=args.naive_broker,
                say=say,
            )
            results["naive"] = {"rows": [row.as_dict() for row in naive], "checks": checks}
        if "ray" in sections:
            say("4. Ray Data map_batches, actor pool, the same pack")
            ray = run_ray(
                corpora,
                settings.packs_dir,
                work,
                actor_counts=(1, 2) if cores >= 2 else (1,),
                cores=cores,
                reps=args.reps,
                token_budget=settings.batch_token_budget,
                max_batch_docs=settings.max_batch_docs,
                say=say,
            )
            results["ray"] = [row.as_dict() for row in ray]
        if "generation" in sections:
            say("5. generation: the worker's runtime against transformers generate")
            results["generation"] = run_generation(
                placement.device, args.generation_rounds, "1,8,32", work, say
            )
        if "growth" in sections:
            say("6. cost of growth")
            tickets = [(s, p) for s, p in sources(settings.data_dir / "data") if s.name == "tickets" and p]
            if tickets:
                source, path = tickets[0]
                corpus = load_corpus(source, path, 5000, work / "growth")
                levels = tuple(int(n) for n in args.growth.split(","))
                growth = run_growth(
                    corpus,
                    settings,
                    work,
                    levels=levels,
                    cores=cores,
                    database_url=database_url,
                    schema=SCHEMA,
                    say=say,
                )
                results["growth"] = {"corpus": corpus.title, "rows": [row.as_dict() for row in growth]}
            else:
                results["growth"] = {"skipped": "nestor work orders missing (make data)"}

    results["total_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{placement.device}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.render(results)
    stem.with_suffix(".md").write_text(markdown)
    print()
    print(markdown)
    say(f"written: {stem.with_suffix('.md')} and .json ({results['total_seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
