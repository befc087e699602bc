"""Start a Celery worker: one process per device, packs loaded and verified before the first chunk.

The pool is ``solo``: the process that loaded the ONNX sessions is the one that runs them, so CUDA is never
initialised in a forked child, and ONNX Runtime's own threads use the cores. For several GPUs run one
worker per GPU, each with its own ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import signals

from nightclerk.shared import broker
from nightclerk.shared.celery_app import get_app
from nightclerk.shared.logging import configure_logging, get_logger
from nightclerk.shared.settings import Settings
from nightclerk.workers import metrics, tasks
from nightclerk.workers.ledger_sweeper import LedgerSweeper
from nightclerk.workers.pack_registry import PackRegistry

log = get_logger(__name__)


def _keep_our_logging(**_: Any) -> None:
    """Connected to ``setup_logging`` so Celery leaves the structlog configuration alone."""


def prepare_worker(settings: Settings, worker_id: str) -> tasks.WorkerContext:
    broker.ping(settings)
    registry = PackRegistry(settings)
    log.info(
        "device_selected",
        device=registry.placement.device,
        provider=registry.placement.provider_name,
        worker_id=worker_id,
    )
    ready = registry.preload()
    context = tasks.build_context(settings, worker_id, registry)
    log.info(
        "worker_ready",
        serves=ready,
        store=context.processor.store.describe(),
        queue=settings.queue,
        worker_id=worker_id,
    )
    return context


def run_worker(settings: Settings, *, name: str | None = None, loglevel: str = "INFO") -> None:
    configure_logging(json=settings.log_json, level=settings.log_level)
    signals.setup_logging.connect(_keep_our_logging, weak=False)
    hostname = name or f"nightclerk-{os.getpid()}@{socket.gethostname()}"
    context = prepare_worker(settings, hostname)
    tasks.install_context(context)
    sweeper = LedgerSweeper(settings, context.leases, hostname).start()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings)
        log.info("metrics_served", port=settings.metrics_port, worker_id=hostname)
    try:
        get_app().worker_main(
            [
                "worker",
                "--pool=solo",
                f"--queues={settings.queue}",
                f"--hostname={hostname}",
                f"--loglevel={loglevel}",
                "--without-mingle",
                "--without-gossip",
            ]
        )
    finally:  # a warm shutdown: the chunk in hand is done and its lease released
        sweeper.stop()
        context.leases.close()
