"""Where a worker's time goes, chunk by chunk and step by step: the profile behind the end-to-end ratio.

    .venv/bin/python -m bench.chunk_steps [--corpus tickets] [--docs 1000] [--database-url URL]

The corpus slice (as ``make bench`` takes it) is pushed through the producer's own validation and chunking,
captured instead of sent. Each chunk then goes through what the Celery task does with it, in this process:
the message decoded as the Redis transport carries it (base64, JSON) and validated, its lease and ledger
entry, and :class:`~nightclerk.workers.chunk_processor.ChunkProcessor` against a PostgreSQL schema and change
feed of its own. The store, feed, tokenizer and ONNX Runtime calls are timed where they are made; what no
timed call holds (its bookkeeping, metrics, the log line) is "the rest". Celery's own share
(fetching, acking) is not here: it is what separates this from ``make bench``'s end-to-end figure.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.corpora import load_corpora, repeat_mapping
from bench.endtoend import clear_queue_keys
from bench.run import POSTGRES
from nightclerk.producers.enqueue import Enqueuer
from nightclerk.producers.push import push_files
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.workers import tasks
from nightclerk.workers.classifier import ClassifierRuntime

QUEUE = "nightclerk-chunk-steps"
SCHEMA = "nightclerk_chunk_steps"
T = TypeVar("T")
# the order of the report; "processor's own Python" is the processor's time less its timed calls
STEPS = (
    "decode + validate message",
    "lease + ledger",
    "store: existing()",
    "tokenize",
    "ONNX Runtime run",
    "batching, padding, softmax",
    "result rows",
    "store: upsert()",
    "change feed: announce()",
    "the rest: bookkeeping, metrics, log",
)


class Captured(Enqueuer):
    """Keeps the chunks push makes instead of sending them (no broker needed)."""

    def __init__(self) -> None:
        self.chunks: list[ChunkMessage] = []
        self.sent = 0

    def check(self) -> None:
        return None

    def send(self, chunk: ChunkMessage) -> str:
        self.chunks.append(chunk)
        self.sent += 1
        return chunk.chunk_id

    def close(self) -> None:
        return None


class Clock:
    """Seconds spent per step, summed over the chunks timed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.on = False

    def wrap(self, step: str, call: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                if self.on:
                    self.seconds[step] += time.perf_counter() - started

        return timed


def wire_body(chunk: ChunkMessage) -> bytes:
    """The chunk as the Redis transport holds it: kombu's JSON of the message, base64-encoded."""
    return base64.b64encode(json.dumps(chunk.model_dump(mode="json")).encode())


def instrument(context: tasks.WorkerContext, runtime: ClassifierRuntime, clock: Clock) -> None:
    """Time the processor's calls on the instances it holds (instance attributes shadow the methods)."""
    store, feed = context.processor.store, context.processor.feed
    store.existing = clock.wrap("store: existing()", store.existing)  # type: ignore[method-assign]
    store.upsert = clock.wrap("store: upsert()", store.upsert)  # type: ignore[method-assign]
    if feed is not None:
        feed.announce = clock.wrap("change feed: announce()", feed.announce)  # type: ignore[method-assign]
    runtime.encode = clock.wrap("tokenize", runtime.encode)  # type: ignore[method-assign]
    runtime.session.run = clock.wrap("ONNX Runtime run", runtime.session.run)
    runtime.classify = clock.wrap("classify", runtime.classify)  # type: ignore[method-assign]
    context.processor._rows = clock.wrap("rows", context.processor._rows)  # type: ignore[method-assign]
    context.processor.process = clock.wrap("process", context.processor.process)  # type: ignore[method-assign]


def profile(settings: Settings, chunks: list[bytes], warm: list[bytes]) -> tuple[dict[str, float], int, str]:
    """Seconds per step over ``chunks`` (after ``warm`` went through untimed), the documents they held, and
    the pack variant that ran."""
    context = tasks.build_context(settings, "chunk-steps")
    kind = ChunkMessage.model_validate(json.loads(base64.b64decode(chunks[0]))).kind
    runtime = context.processor.registry.classifier_for(kind)
    clock = Clock()
    instrument(context, runtime, clock)
    documents = 0
    try:
        for timed, bodies in ((False, warm), (True, chunks)):
            clock.on = timed
            for body in bodies:
                started = time.perf_counter()
                chunk = ChunkMessage.model_validate(json.loads(base64.b64decode(body)))
                decoded = time.perf_counter()
                tasks._process_leased(context, chunk)
                if timed:
                    clock.seconds["decode + validate message"] += decoded - started
                    clock.seconds["task"] += time.perf_counter() - decoded
                    documents += len(chunk.documents)
    finally:
        context.processor.store.drop()
        context.processor.store.close()
        context.leases.close()
        context.sender.close()
    return _steps(clock.seconds), documents, f"{runtime.name} {runtime.variant.precision}"


def _steps(seconds: dict[str, float]) -> dict[str, float]:
    timed_inside = ("tokenize", "ONNX Runtime run")
    inside_process = ("store: existing()", "rows", "store: upsert()", "change feed: announce()")
    steps = {step: seconds.get(step, 0.0) for step in STEPS}
    steps["lease + ledger"] = seconds["task"] - seconds["process"]
    steps["batching, padding, softmax"] = seconds["classify"] - sum(seconds[s] for s in timed_inside)
    steps["result rows"] = seconds["rows"] - seconds["classify"]
    steps["the rest: bookkeeping, metrics, log"] = seconds["process"] - sum(
        seconds.get(s, 0.0) for s in inside_process
    )
    return steps


def report(corpus: str, variant: str, steps: dict[str, float], documents: int, chunks: int) -> str:
    total = sum(steps.values())
    inference = steps["tokenize"] + steps["ONNX Runtime run"] + steps["batching, padding, softmax"]
    lines = [
        f"{corpus} ({variant}): {documents} documents in {chunks} chunks, {documents / total:.1f} docs/s "
        "in process "
        f"(classify alone {documents / inference:.1f} docs/s: {inference / total:.2f} of the time)",
        "",
        "| step | ms per chunk | µs per document | share |",
        "| --- | ---: | ---: | ---: |",
    ]
    for step, seconds in steps.items():
        lines.append(
            f"| {step} | {seconds * 1000 / chunks:.1f} | {seconds * 1e6 / documents:.0f} | "
            f"{seconds / total:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="tickets", choices=("notes", "abstracts", "tickets"))
    parser.add_argument("--docs", type=int, default=1000, help="as make bench's --docs (work orders: 5x)")
    parser.add_argument("--database-url", default=POSTGRES)
    args = parser.parse_args(argv)
    configure_logging(json=True, level="WARNING")
    base = get_settings()
    settings = base.with_overrides(
        queue=QUEUE,
        feed_stream=f"{QUEUE}:results",
        database_url=args.database_url,
        database_schema=SCHEMA,
        packs_dir=str(base.packs_dir.resolve()),
    )
    with tempfile.TemporaryDirectory(prefix="nightclerk-chunk-steps-") as tmp:
        work = Path(tmp)
        found, missing = load_corpora(base.data_dir / "data", args.docs, work, [args.corpus])
        if missing:
            raise SystemExit(missing[0])
        (corpus,) = found
        bodies: dict[str, list[bytes]] = {}
        for tag in ("warm", "timed"):
            captured = Captured()
            push_files(
                [corpus.path],
                repeat_mapping(corpus.mapping, tag),
                ["classify"],
                settings,
                rejects_path=work / f"rejects-{tag}.jsonl",
                progress=False,
                enqueuer=captured,
            )
            bodies[tag] = [wire_body(chunk) for chunk in captured.chunks]
    clear_queue_keys(settings.redis_url, QUEUE)
    try:
        steps, documents, variant = profile(settings, bodies["timed"], bodies["warm"][:1])
    finally:
        clear_queue_keys(settings.redis_url, QUEUE)
    print(report(corpus.name, variant, steps, documents, len(bodies["timed"])))


if __name__ == "__main__":
    main()
