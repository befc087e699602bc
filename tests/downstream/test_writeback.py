"""Ticket write-back on real Redis and PostgreSQL against a local HTTP server the test starts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from nightclerk.downstream.delivery_log import DeliveryLog
from nightclerk.downstream.writeback import WritebackConfig, WritebackSink, idempotency_key
from nightclerk.shared.change_feed import Announcement, ChangeFeed, FeedConsumer
from nightclerk.shared.errors import ConfigError
from nightclerk.shared.results import LabelScore, ResultRow
from nightclerk.shared.store import ResultStore

TOKEN = "Authorization: Bearer test-token"


@dataclass
class Endpoint:
    """A ticketing system stand-in: answers ``statuses`` in turn (then 200), records every request."""

    port: int
    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Endpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def endpoint(free_port: Callable[[], int]) -> Iterator[Endpoint]:
    result = Endpoint(free_port())
    yield result
    result.stop()


@pytest.fixture
def store(pg_result_store: ResultStore) -> ResultStore:
    return pg_result_store


@pytest.fixture
def feed(change_feed: ChangeFeed) -> ChangeFeed:
    return change_feed


def stored(
    store: ResultStore, feed: ChangeFeed, document_ids: list[str], kind: str = "repair_ticket"
) -> None:
    rows = [
        ResultRow(
            document_id=doc, kind=kind, task="classify", pack_name="ticket-system", pack_version="v1",
            precision="int8", labels=[LabelScore(label="Hydraulic", score=0.91)], worker_id="w", chunk_id="c",
        )
        for doc in document_ids
    ]  # fmt: skip
    store.upsert(rows)
    feed.announce([Announcement(r.document_id, kind, "classify", "ticket-system", "v1", "c") for r in rows])


def sink_for(store: ResultStore, feed: ChangeFeed, endpoint: Endpoint, **config: Any) -> WritebackSink:
    log = DeliveryLog(store, "ticket-writeback")
    log.create_schema()
    settings = {"auth_header": TOKEN, "backoff_initial_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 2.0}
    return WritebackSink(
        WritebackConfig(url_template=endpoint.url + "/issues/{source_id}/result", **(settings | config)),
        FeedConsumer(feed, "ticket-writeback", "sink-1"),
        store,
        log,
    )


def test_each_ticket_is_posted_once_with_auth_and_an_idempotency_key(
    store: ResultStore, feed: ChangeFeed, endpoint: Endpoint
) -> None:
    endpoint.start()
    stored(store, feed, ["jira:OPS-1", "jira:OPS-2"])
    stored(store, feed, ["mtsamples:7"], kind="ehr_note")  # not a ticket: not this sink's
    feed.announce(
        [Announcement("jira:OPS-1", "repair_ticket", "classify", "ticket-system", "v1", "c")]
    )  # again
    sink = sink_for(store, feed, endpoint)
    stats = sink.run(threading.Event(), max_entries=4, wait_ms=200)
    assert (stats.delivered, stats.ignored, stats.duplicates) == (2, 1, 1)
    assert [r["path"] for r in endpoint.requests] == ["/issues/OPS-1/result", "/issues/OPS-2/result"]
    first = endpoint.requests[0]
    assert first["headers"]["Authorization"] == "Bearer test-token"
    key = idempotency_key(Announcement("jira:OPS-1", "repair_ticket", "classify", "ticket-system", "v1", "c"))
    assert first["headers"]["Idempotency-Key"] == key
    assert first["body"]["labels"] == [{"label": "Hydraulic", "score": 0.91}]
    log = sink.delivery_log.rows()
    assert [(r["document_id"], r["outcome"], r["http_status"], r["attempts"]) for r in log] == [
        ("jira:OPS-1", "delivered", 200, 1),
        ("jira:OPS-2", "delivered", 200, 1),
    ]


def test_a_failing_endpoint_is_retried_until_it_recovers(
    store: ResultStore, feed: ChangeFeed, endpoint: Endpoint
) -> None:
    endpoint.statuses = [503, 502, 429]
    endpoint.start()
    stored(store, feed, ["jira:OPS-9"])
    stats = sink_for(store, feed, endpoint).run(threading.Event(), max_entries=1, wait_ms=200)
    assert (stats.delivered, stats.retries) == (1, 3)
    keys = {r["headers"]["Idempotency-Key"] for r in endpoint.requests}
    assert len(endpoint.requests) == 4 and len(keys) == 1  # every attempt carries the same key


def test_a_dead_endpoint_delays_delivery_and_loses_nothing(
    store: ResultStore, feed: ChangeFeed, endpoint: Endpoint
) -> None:
    stored(store, feed, ["jira:OPS-3", "jira:OPS-4"])
    stop = threading.Event()
    sink = sink_for(store, feed, endpoint)  # nothing listens on the port yet
    runner = threading.Thread(target=sink.run, args=(stop,), kwargs={"wait_ms": 200})
    runner.start()
    threading.Event().wait(1.0)
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive() and sink.stats.delivered == 0 and sink.stats.retries >= 2
    assert feed.client.xpending(feed.stream, "ticket-writeback")["pending"] >= 1  # not acknowledged
    endpoint.start()  # the ticketing system is back; the sink is started again
    stats = sink_for(store, feed, endpoint).run(threading.Event(), max_entries=2, wait_ms=200)
    assert stats.delivered == 2
    assert sorted(r["path"] for r in endpoint.requests) == ["/issues/OPS-3/result", "/issues/OPS-4/result"]


def test_a_refused_ticket_is_recorded_and_the_sink_goes_on(
    store: ResultStore, feed: ChangeFeed, endpoint: Endpoint
) -> None:
    endpoint.statuses = [404]
    endpoint.start()
    stored(store, feed, ["jira:GONE-1", "jira:OPS-5"])
    stored(store, feed, ["nestor:sha256:0123456789abcdef01234567"])  # no source id to put in the URL
    sink = sink_for(store, feed, endpoint)
    stats = sink.run(threading.Event(), max_entries=3, wait_ms=200)
    assert (stats.rejected, stats.delivered, stats.skipped, stats.retries) == (1, 1, 1, 0)
    outcomes = {
        r["document_id"]: (r["outcome"], r["http_status"], r["reason"]) for r in sink.delivery_log.rows()
    }
    assert outcomes["jira:GONE-1"] == ("rejected", 404, None)
    assert outcomes["nestor:sha256:0123456789abcdef01234567"][0] == "skipped"
    assert feed.client.xpending(feed.stream, "ticket-writeback")["pending"] == 0


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="fields: document_id"):
        WritebackConfig(url_template="http://x/{ticket}")
    with pytest.raises(ConfigError, match="Name: value"):
        WritebackConfig(url_template="http://x/{source_id}", auth_header="token-without-a-name")
