"""Ticket write-back: follow the change feed and POST each ticket's result to the ticketing system.

For every announced result of a kind it serves (repair tickets by default) the sink loads the row from the
store and POSTs it as JSON to ``url_template`` (``{document_id}``, ``{source}``, ``{source_id}``, ``{task}``,
``{pack_name}``, ``{pack_version}``, each URL-quoted), with the configured auth header and an
``Idempotency-Key`` that is the same for every attempt at the same (document id, task, pack version).

- A dead or failing endpoint (no connection, timeout, 408, 429, 5xx) is retried with exponential backoff and
  jitter, without end: the feed entry is acknowledged only once the outcome is final, so a stopped sink takes
  it up again on its next run. Delivery is delayed, never lost.
- Any other 4xx is final: recorded as ``rejected`` with its status (the endpoint will not take it), and the
  sink goes on.
- Every final outcome goes to the delivery log (:mod:`.delivery_log`); an entry already there is not sent
  again, so the feed's at-least-once entries give one delivery each.

Retries use tenacity; HTTP is httpx. Logs carry ids, status codes and counts, never a payload or a response
body (a summary is derived from the ticket's text).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential_jitter,
)

from nightclerk.downstream.delivery_log import DeliveryLog, Outcome
from nightclerk.shared.change_feed import Announcement, FeedConsumer
from nightclerk.shared.errors import ConfigError
from nightclerk.shared.logging import get_logger
from nightclerk.shared.results import ResultRow
from nightclerk.shared.store import ResultStore

log = get_logger(__name__)
TEMPLATE_FIELDS = ("document_id", "source", "source_id", "task", "pack_name", "pack_version")
_RETRY_STATUSES = {408, 429}


class TransientDelivery(Exception):
    """This attempt failed in a way a later one may not: retry."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class WritebackConfig:
    url_template: str
    auth_header: str | None = None  # "Name: value", e.g. "Authorization: Bearer ..."
    kinds: tuple[str, ...] = ("repair_ticket",)
    timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0

    def __post_init__(self) -> None:
        try:
            self.url_template.format(**dict.fromkeys(TEMPLATE_FIELDS, "x"))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"writeback URL template: {type(exc).__name__} {exc}; fields: {', '.join(TEMPLATE_FIELDS)}"
            ) from None
        if self.auth_header is not None and ":" not in self.auth_header:
            raise ConfigError("writeback auth header must look like 'Name: value'")

    def headers(self) -> dict[str, str]:
        if self.auth_header is None:
            return {}
        name, value = self.auth_header.split(":", 1)
        return {name.strip(): value.strip()}


@dataclass
class SinkStats:
    delivered: int = 0
    rejected: int = 0
    skipped: int = 0
    duplicates: int = 0  # entries whose outcome was already in the delivery log
    ignored: int = 0  # entries of kinds this sink does not serve
    retries: int = 0
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)


def _waiter(stop: threading.Event) -> Callable[[float], None]:
    def wait(seconds: float) -> None:
        stop.wait(seconds)

    return wait


def idempotency_key(announcement: Announcement) -> str:
    key = f"{announcement.document_id}\n{announcement.task}\n{announcement.pack_version}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _source_parts(document_id: str) -> tuple[str, str | None]:
    """(source, source id) from ``source:source_id``; no source id when the id is a content hash."""
    source, _, rest = document_id.partition(":")
    return source, (None if not rest or rest.startswith("sha256:") else rest)


PAYLOAD_FIELDS = {"document_id", "task", "pack_name", "pack_version", "labels", "summary", "created_at"}


def payload(row: ResultRow) -> dict[str, Any]:
    """What the ticketing system receives: the result, never the ticket's own text."""
    return row.model_dump(mode="json", include=PAYLOAD_FIELDS)


class WritebackSink:
    def __init__(
        self,
        config: WritebackConfig,
        consumer: FeedConsumer,
        store: ResultStore,
        delivery_log: DeliveryLog,
        *,
        client: httpx.Client | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.store = store
        self.delivery_log = delivery_log
        self.client = client or httpx.Client(timeout=config.timeout_s)
        self.stats = SinkStats()

    def run(self, stop: threading.Event, *, max_entries: int | None = None, wait_ms: int = 5000) -> SinkStats:
        """Follow the feed until ``stop`` is set (or ``max_entries`` entries are settled)."""
        settled = 0
        while not stop.is_set() and (max_entries is None or settled < max_entries):
            want = 50 if max_entries is None else min(50, max_entries - settled)
            for entry in self.consumer.read(count=want, block_ms=wait_ms):
                try:
                    self.handle(entry.announcement, stop)
                except RetryError:  # stopped while waiting to retry: the entry stays pending for next run
                    return self.stats
                self.consumer.ack([entry])
                settled += 1
        return self.stats

    def handle(self, announcement: Announcement, stop: threading.Event) -> None:
        if announcement.kind not in self.config.kinds:
            self.stats.ignored += 1
            return
        a = announcement
        if self.delivery_log.done(a.document_id, a.task, a.pack_version):
            self.stats.duplicates += 1
            return
        key = idempotency_key(a)
        row = self.store.get(a.document_id, a.task, a.pack_version)
        source, source_id = _source_parts(a.document_id)
        needs_source_id = "{source_id}" in self.config.url_template
        if row is None or (needs_source_id and source_id is None):
            reason = "no stored row" if row is None else "no source id (content-hash document id)"
            self._finish(a, "skipped", key, attempts=0, reason=reason)
            return
        values = {
            "document_id": a.document_id, "source": source, "source_id": source_id or "", "task": a.task,
            "pack_name": a.pack_name, "pack_version": a.pack_version,
        }  # fmt: skip
        url = self.config.url_template.format(**{k: quote(v, safe="") for k, v in values.items()})
        headers = {**self.config.headers(), "Idempotency-Key": key}
        attempts = 0
        retrying = Retrying(
            retry=retry_if_exception_type(TransientDelivery),
            wait=wait_exponential_jitter(
                multiplier=self.config.backoff_initial_s, max=self.config.backoff_max_s
            ),
            stop=stop_when_event_set(stop),
            sleep=_waiter(stop),  # a stop request cuts the backoff short
            before_sleep=lambda state: self._waiting(a, state.outcome),
        )
        for attempt in retrying:
            with attempt:
                attempts += 1
                status = self._post(url, headers, payload(row))
        outcome: Outcome = "delivered" if 200 <= status < 300 else "rejected"
        self._finish(a, outcome, key, attempts=attempts, status=status)

    def _post(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        try:
            response = self.client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:  # connection refused, timeout, protocol error
            raise TransientDelivery(type(exc).__name__) from None
        if response.status_code >= 500 or response.status_code in _RETRY_STATUSES:
            raise TransientDelivery(f"HTTP {response.status_code}", response.status_code)
        return response.status_code

    def _waiting(self, a: Announcement, outcome: Any) -> None:
        self.stats.retries += 1
        failure = outcome.exception() if outcome is not None else None
        log.warning(
            "writeback_retry",
            document_id=a.document_id,
            task=a.task,
            reason=failure.reason if isinstance(failure, TransientDelivery) else type(failure).__name__,
        )

    def _finish(
        self,
        a: Announcement,
        outcome: Outcome,
        key: str,
        *,
        attempts: int,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.delivery_log.record(
            a.document_id, a.task, a.pack_version, outcome=outcome, attempts=attempts,
            idempotency_key=key, http_status=status, reason=reason,
        )  # fmt: skip
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self.stats.outcomes.append((a.document_id, outcome))
        log.info(
            "writeback_" + outcome, document_id=a.document_id, task=a.task, http_status=status,
            attempts=attempts, reason=reason,
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()
