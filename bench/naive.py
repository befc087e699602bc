"""(3) The naive build (:mod:`bench.naive_app`) run as a Celery worker beside the same documents.

Two configurations: Celery's defaults (prefork, one child per core, each with torch's default threads) and
one child using every core; nightclerk is compared with the faster of the two. Before timing, the PyTorch
copy is checked against the pack: its version must be the pack's and its top label must agree with the
pack's fp32 ONNX variant on the first documents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.corpora import Corpus
from bench.sampler import PeakSampler
from bench.stats import Spread
from nightclerk.shared.manifest import verify_pack
from nightclerk.shared.settings import Settings
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement

REPO = Path(__file__).resolve().parents[1]
PARITY_DOCS = 16


@dataclass
class NaiveRow:
    corpus: str
    pack: str
    concurrency: int
    docs: int
    docs_per_s: Spread = field(default_factory=Spread)
    peak_mib: Spread = field(default_factory=Spread)

    def as_dict(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "pack": self.pack,
            "concurrency": self.concurrency,
            "docs": self.docs,
            "docs_per_s": self.docs_per_s.as_dict(),
            "peak_worker_pss_mib": self.peak_mib.as_dict(),
        }


def torch_copy(models_dir: Path, packs_dir: Path, pack: str) -> tuple[Path | None, str]:
    """The pack's PyTorch copy when it is there and of the pack's version, else None and why."""
    folder = models_dir / "torch" / pack
    info_file = folder / "torch_copy.json"
    if not info_file.is_file():
        return None, f"no PyTorch copy of {pack} at {folder} (rebuild: nightclerk models ensure-demo --force)"
    version = json.loads(info_file.read_text())["version"]
    manifest = verify_pack(packs_dir / pack, task="classify")
    if version != manifest.version:
        return None, f"the PyTorch copy at {folder} is of {pack} {version}, the pack is {manifest.version}"
    return folder, ""


def parity(folder: Path, settings: Settings, placement: Placement, pack: str, texts: list[str]) -> int:
    """How many of the first documents get the same top label from the copy and the pack's fp32 variant."""
    from bench.naive_app import Model

    model = Model(folder)
    runtime = ClassifierRuntime(settings.packs_dir / pack, placement, precision="fp32")
    onnx_top = [runtime.labels[i] for i in runtime.classify(texts).probabilities.argmax(axis=1)]
    torch_top = [max(scores, key=scores.__getitem__) for scores in map(model.classify, texts)]
    return sum(a == b for a, b in zip(onnx_top, torch_top, strict=True))


class NaiveWorker:
    def __init__(self, model_dir: Path, concurrency: int, broker_url: str, log_path: Path) -> None:
        self.env = {
            **os.environ,
            "NAIVE_BROKER": broker_url,
            "NAIVE_BACKEND": broker_url,
            "NAIVE_MODEL_DIR": str(model_dir),
            "PYTHONPATH": str(REPO),
        }
        self.concurrency = concurrency
        self.broker_url = broker_url
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NaiveWorker:
        clear_naive_keys(self.broker_url)
        command = [sys.executable, "-m", "celery", "-A", "bench.naive_app", "worker", "--loglevel=WARNING"]
        command.append(f"--concurrency={self.concurrency}")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=self.env, cwd=REPO, stdout=log, stderr=log)
        os.environ.update({k: self.env[k] for k in ("NAIVE_BROKER", "NAIVE_BACKEND")})
        from bench.naive_app import app, classify

        app.conf.broker_url = app.conf.result_backend = self.broker_url
        deadline = time.monotonic() + 300
        while not app.control.ping(timeout=1.0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the naive worker did not start; see {self.log_path}")
        # warm-up: every child loads its model at start; a task per child makes sure they have
        for result in [classify.delay("warm up") for _ in range(4 * self.concurrency)]:
            result.get(timeout=300)
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        clear_naive_keys(self.broker_url)

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None and self.process.poll() is None else []

    def run(self, texts: list[str]) -> float:
        from bench.naive_app import classify

        started = time.perf_counter()
        results = [classify.delay(text) for text in texts]
        for result in results:
            result.get(timeout=3600)
        return len(texts) / (time.perf_counter() - started)


def clear_naive_keys(url: str) -> None:
    client = redis.Redis.from_url(url)
    for pattern in ("celery-task-meta-*", "naive-bench*", "_kombu*", "unacked*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


def run_naive(
    corpora: list[Corpus],
    settings: Settings,
    placement: Placement,
    work: Path,
    *,
    models_dir: Path,
    concurrencies: tuple[int, ...],
    reps: int,
    broker_url: str,
    say: Callable[[str], None],
) -> tuple[list[NaiveRow], dict[str, Any]]:
    rows: list[NaiveRow] = []
    checks: dict[str, Any] = {}
    usable: list[tuple[Corpus, Path]] = []
    for corpus in corpora:
        folder, why = torch_copy(models_dir, settings.packs_dir, corpus.pack)
        if folder is None:
            checks[corpus.name] = {"skipped": why}
            say(f"  naive {corpus.name}: skipped: {why}")
            continue
        agree = parity(folder, settings, placement, corpus.pack, corpus.texts[:PARITY_DOCS])
        checks[corpus.name] = {"top_label_agreement_with_fp32": f"{agree}/{PARITY_DOCS}"}
        say(f"  naive {corpus.name}: PyTorch copy agrees with the pack's fp32 on {agree}/{PARITY_DOCS}")
        usable.append((corpus, folder))
    for concurrency in concurrencies:
        for corpus, folder in usable:
            row = NaiveRow(corpus.name, corpus.pack, concurrency, len(corpus.texts))
            rows.append(row)
            log = work / f"naive-{corpus.name}-{concurrency}.log"
            with NaiveWorker(folder, concurrency, broker_url, log) as worker:
                for rep in range(reps):
                    with PeakSampler(worker.pids) as sampler:
                        row.docs_per_s.add(worker.run(corpus.texts))
                    row.peak_mib.add(sampler.peak_pss_mib)
                    say(
                        f"  naive concurrency {concurrency} rep {rep + 1}/{reps} {corpus.name}: "
                        f"{row.docs_per_s.values[-1]:.1f} docs/s, {sampler.peak_pss_mib:.0f} MiB"
                    )
    return rows, checks
