"""(4) Ray Data: ``map_batches`` with an actor pool running the same pack through the worker's own runtime.

Run as its own process (``python -m bench.ray_data SPEC.json``), so that everything Ray starts -- GCS,
raylet, the actors, the object store -- is a descendant of it and its memory can be summed
(:class:`bench.sampler.PeakSampler`). In that process Ray starts once; then for each repetition a job reads
the documents, classifies them in batches of ``max_batch_docs`` on ``actors`` actors of
``cores / actors`` threads each, and writes Parquet (its result store). Each output row carries the wall
clock of its batch's start and end in the actor; "steady" is the documents over the span from the first
batch's start to the last batch's end, read back from the Parquet: what Ray runs at once its actors are up,
without the pool's start and the job's planning (nightclerk's workers are started before its clock too).

An earlier version took a one-batch job's time off the whole job's; that took one batch of inference off
as well, and came out above the bare limit (notes, 2 actors: 47 docs/s against 41).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.corpora import Corpus
from bench.sampler import PeakSampler
from bench.stats import Spread

REPO = Path(__file__).resolve().parents[1]


class Classify:
    """The actor: loads the pack once, classifies each batch it is given."""

    def __init__(self, pack_dir: str, threads: int, token_budget: int, max_batch_docs: int) -> None:
        import onnxruntime as ort

        from nightclerk.workers.classifier import ClassifierRuntime
        from nightclerk.workers.device import choose_placement

        placement = choose_placement("auto", ort.get_available_providers())
        self.runtime = ClassifierRuntime(
            Path(pack_dir),
            placement,
            threads=threads,
            token_budget=token_budget,
            max_batch_docs=max_batch_docs,
        )
        self.labels = np.array(self.runtime.labels)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.time()  # wall clock: the actors are other processes; one machine, one clock
        probabilities = self.runtime.classify([str(text) for text in batch["text"]]).probabilities
        top = probabilities.argmax(axis=1)
        size = len(top)
        return {
            "id": batch["id"],
            "label": self.labels[top],
            "score": probabilities.max(axis=1),
            "batch_started": np.full(size, started),
            "batch_ended": np.full(size, time.time()),
        }


def batch_span_seconds(table: pa.Table) -> float:
    """From the first batch's start to the last batch's end, in the seconds the actors clocked."""
    started = pc.min(table["batch_started"]).as_py()
    ended = pc.max(table["batch_ended"]).as_py()
    if started is None or ended is None:
        raise ValueError("no batches in the job's output")
    return float(ended - started)


def _job(texts: list[str], spec: dict[str, Any], out: Path) -> tuple[float, float]:
    """(the job's seconds, its batches' span) for one job over ``texts``."""
    import ray

    started = time.perf_counter()
    dataset = ray.data.from_items([{"id": str(i), "text": text} for i, text in enumerate(texts)])
    dataset.map_batches(
        Classify,
        fn_constructor_kwargs={
            "pack_dir": spec["pack_dir"],
            "threads": spec["threads"],
            "token_budget": spec["token_budget"],
            "max_batch_docs": spec["max_batch_docs"],
        },
        batch_size=spec["max_batch_docs"],
        compute=ray.data.ActorPoolStrategy(size=spec["actors"]),
        num_cpus=spec["threads"],
        batch_format="numpy",
    ).write_parquet(str(out))
    seconds = time.perf_counter() - started
    return seconds, batch_span_seconds(pq.read_table(out, columns=["batch_started", "batch_ended"]))


def main(spec_path: str) -> None:
    """The child process: run the jobs of the spec, write the seconds of each to the spec's ``out``."""
    import ray

    spec = json.loads(Path(spec_path).read_text())
    texts = json.loads(Path(spec["texts"]).read_text())
    ray.init(num_cpus=spec["cores"], include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    seconds, spans = [], []
    with tempfile.TemporaryDirectory(prefix="nightclerk-ray-") as tmp:
        _job(texts[: spec["max_batch_docs"]], spec, Path(tmp) / "warm")  # first imports, first job's setup
        for rep in range(spec["reps"]):
            job_s, span_s = _job(texts, spec, Path(tmp) / f"all-{rep}")
            seconds.append(job_s)
            spans.append(span_s)
            print(f"ray rep {rep + 1}: {len(texts) / job_s:.1f} docs/s per job", flush=True)
    Path(spec["out"]).write_text(json.dumps({"seconds": seconds, "span_seconds": spans}))
    ray.shutdown()


@dataclass
class RayRow:
    corpus: str
    pack: str
    actors: int
    threads: int
    docs: int
    docs_per_s: Spread = field(default_factory=Spread)  # per job, actor start included
    steady_docs_per_s: Spread = field(default_factory=Spread)  # first batch's start to last batch's end
    peak_all_mib: float = 0.0
    peak_cluster_mib: float = 0.0  # everything but the driver
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "pack": self.pack,
            "actors": self.actors,
            "threads_per_actor": self.threads,
            "docs": self.docs,
            "docs_per_s": self.docs_per_s.as_dict(),
            "steady_docs_per_s": self.steady_docs_per_s.as_dict(),
            "peak_pss_mib_with_driver": self.peak_all_mib,
            "peak_pss_mib_without_driver": self.peak_cluster_mib,
            "error": self.error,
        }


def run_ray(
    corpora: list[Corpus],
    packs_dir: Path,
    work: Path,
    *,
    actor_counts: tuple[int, ...],
    cores: int,
    reps: int,
    token_budget: int,
    max_batch_docs: int,
    say: Callable[[str], None],
) -> list[RayRow]:
    rows: list[RayRow] = []
    for actors in actor_counts:
        for corpus in corpora:
            threads = max(1, cores // actors)
            row = RayRow(corpus.name, corpus.pack, actors, threads, len(corpus.texts))
            rows.append(row)
            texts_file = work / f"ray-{corpus.name}.json"
            texts_file.write_text(json.dumps(corpus.texts))
            spec: dict[str, Any] = {
                "texts": str(texts_file),
                "pack_dir": str((packs_dir / corpus.pack).resolve()),
                "actors": actors,
                "threads": threads,
                "cores": cores,
                "reps": reps,
                "token_budget": token_budget,
                "max_batch_docs": max_batch_docs,
                "out": str(work / f"ray-{corpus.name}-{actors}.out.json"),
            }
            spec_file = work / f"ray-{corpus.name}-{actors}.spec.json"
            spec_file.write_text(json.dumps(spec))
            log = work / f"ray-{corpus.name}-{actors}.log"
            with log.open("wb") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bench.ray_data", str(spec_file)],
                    cwd=REPO,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
                with (
                    PeakSampler(_Tree(process.pid)) as everything,
                    PeakSampler(_Tree(process.pid, children_only=True)) as cluster,
                ):
                    code = process.wait()
            if code != 0:
                row.error = f"exit status {code}; see {log}"
                say(f"  ray {corpus.name} {actors} actors: failed, {row.error}")
                continue
            result = json.loads(Path(spec["out"]).read_text())
            for seconds, span in zip(result["seconds"], result["span_seconds"], strict=True):
                row.docs_per_s.add(row.docs / seconds)
                row.steady_docs_per_s.add(row.docs / max(span, 1e-9))
            row.peak_all_mib, row.peak_cluster_mib = everything.peak_pss_mib, cluster.peak_pss_mib
            say(
                f"  ray {actors} actor(s) {corpus.name}: {row.docs_per_s.cell()} docs/s per job, "
                f"{row.steady_docs_per_s.cell()} from first batch to last, {row.peak_all_mib:.0f} MiB"
            )
    return rows


class _Tree:
    """The roots to sample: a process (its descendants are summed too), or only its children."""

    def __init__(self, pid: int, *, children_only: bool = False) -> None:
        self.pid = pid
        self.children_only = children_only

    def __call__(self) -> list[int]:
        if not self.children_only:
            return [self.pid]
        import psutil

        try:
            return [child.pid for child in psutil.Process(self.pid).children()]
        except psutil.Error:
            return []


if __name__ == "__main__":
    main(sys.argv[1])
