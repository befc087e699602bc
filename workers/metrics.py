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
from nightclerk.shared.settings import Settings

REGISTRY = CollectorRegistry()
FAILURE_REASONS = (
    "inference_error",  # a document dead-lettered after its attempts
    "store_unavailable",  # one failed try against the database (the worker waits and tries again)
    "feed_unavailable",
    "broker_unavailable",  # a lease could not be taken or kept: Redis away
    "pack_missing",
    "message_invalid",  # not a chunk message: dropped
    "message_refused",  # not signed with the signing key: dropped
    "worker_error",  # an error not placed on one document: the chunk's documents dead-lettered
)

DOCUMENTS = Counter(
    "nightclerk_documents",
    "Documents handled, by outcome: stored (inferred now), skipped (already stored), failed",
    ["task", "kind", "outcome"],
    registry=REGISTRY,
)
CHUNKS = Counter("nightclerk_chunks", "Chunks processed to the end", ["kind"], registry=REGISTRY)
CHUNKS_DEFERRED = Counter(
    "nightclerk_chunks_deferred",
    "Chunks sent back for later: another worker holds the lease (lease_held), an outage outlasted the "
    "worker's wait (outage), a pack is missing (pack_missing)",
    ["reason"],
    registry=REGISTRY,
)
CHUNKS_RECOVERED = Counter(
    "nightclerk_chunks_recovered",
    "Chunks the ledger found unaccounted for (lost by the broker) and sent again",
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "nightclerk_dead_letters",
    "Documents given up on and written to the dead letters (nightclerk dlq)",
    ["task", "kind"],
    registry=REGISTRY,
)
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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "nightclerk_queue_depth", "Messages waiting in the queue", labels=["queue"]
        )
        with suppress(
            BrokerUnavailable
        ):  # no sample rather than a wrong one; the worker logs the broker's absence
            family.add_metric([self.settings.queue], broker.queue_depth(self.settings))
        yield family


def serve(port: int, settings: Settings) -> None:
    """Serve ``/metrics`` on ``port`` from a daemon thread (prometheus-client's own server)."""
    REGISTRY.register(QueueDepth(settings))
    start_http_server(port, registry=REGISTRY)
