"""Prometheus metrics of a worker process, served on ``NIGHTCLERK_METRICS_PORT`` (0: not served).

prometheus-client keeps them in a registry of this module (not the library's global one), so tests can read
them and a process that imports nightclerk twice does not register them twice. Labels are tasks, kinds,
packs, outcomes and failure reasons from fixed lists -- never a document id or text, which would leak PHI
and give every document a time series.

The queue depth is read from Redis when Prometheus scrapes (one ``LLEN``), so it is current and costs nothing
between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from nightclerk.shared import broker
from nightclerk.shared.errors import BrokerUnavailable

REGISTRY = CollectorRegistry()
FAILURE_REASONS = (
    "inference_error",
    "store_unavailable",
    "feed_unavailable",
    "pack_missing",
    "message_invalid",
)

DOCUMENTS = Counter(
    "nightclerk_documents",
    "Documents handled, by outcome: stored (inferred now), skipped (already stored), failed",
    ["task", "kind", "outcome"],
    registry=REGISTRY,
)
CHUNKS = Counter("nightclerk_chunks", "Chunks processed to the end", ["kind"], registry=REGISTRY)
FAILURES = Counter("nightclerk_failures", "Failures, by reason", ["reason"], registry=REGISTRY)
BATCH_DOCUMENTS = Histogram(
    "nightclerk_inference_batch_documents",
    "Documents per call of a runtime (it batches them further by its token budget)",
    ["task"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
INFERENCE_SECONDS = Histogram(
    "nightclerk_inference_seconds",
    "Seconds per call of a runtime",
    ["task", "pack"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
END_TO_END_SECONDS = Histogram(
    "nightclerk_end_to_end_seconds",
    "Seconds from a chunk's push to its rows being stored",
    ["task"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400),
    registry=REGISTRY,
)
for _reason in FAILURE_REASONS:  # every reason shows from the start, at 0
    FAILURES.labels(reason=_reason)


class QueueDepth(Collector):
    """``nightclerk_queue_depth{queue}``: messages waiting, read from Redis at scrape time."""

    def __init__(self, redis_url: str, queue: str) -> None:
        self.redis_url = redis_url
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "nightclerk_queue_depth", "Messages waiting in the queue", labels=["queue"]
        )
        with suppress(
            BrokerUnavailable
        ):  # no sample rather than a wrong one; the worker logs the broker's absence
            family.add_metric([self.queue], broker.queue_depth(self.redis_url, self.queue))
        yield family


def serve(port: int, redis_url: str, queue: str) -> None:
    """Serve ``/metrics`` on ``port`` from a daemon thread (prometheus-client's own server)."""
    REGISTRY.register(QueueDepth(redis_url, queue))
    start_http_server(port, registry=REGISTRY)
