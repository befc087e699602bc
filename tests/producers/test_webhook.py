"""The webhook intake served by a real uvicorn server, pushing to the real Redis queue."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from nightclerk.producers.webhook import create_app
from nightclerk.shared.errors import ConfigError
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

TOKEN = "test-token-5c1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def intake(producer_settings: Settings, serve_intake: Callable[[Settings], str]) -> str:
    """The app on uvicorn in a thread; its base URL."""
    return serve_intake(
        Settings.model_validate(
            producer_settings.model_dump() | {"webhook_token": TOKEN, "webhook_max_bytes": 20_000}
        )
    )


def test_records_are_queued_with_stable_ids_and_rejects_give_reasons(
    intake: str,
    queued: Callable[[], list[ChunkMessage]],
    make_nestor_row: Callable[..., dict[str, str]],
    secret: str,
) -> None:
    rows = [
        make_nestor_row("2020-01-02", "A7", f"hydraulic hose leaking {secret}"),
        make_nestor_row("2020-01-02", "A7", f"bucket tooth missing {secret}"),
        {**make_nestor_row("2020-01-03", "A8", ""), "OriginalShorttext": "   "},  # empty text
        "not an object",
    ]
    response = httpx.post(f"{intake}/v1/records/nestor?tasks=classify,summarize", json=rows, headers=AUTH)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == ["nestor:A7-2020-01-02-1", "nestor:A7-2020-01-02-2"] and body["chunks"] == 1
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (2, body["rejected"][0]["reason"]),
        (3, "item is not a JSON object"),
    ]
    assert "empty" in body["rejected"][0]["reason"] and secret not in response.text
    (chunk,) = queued()
    assert [d.id for d in chunk.documents] == body["accepted"] and chunk.tasks == ["classify", "summarize"]
    again = httpx.post(f"{intake}/v1/records/nestor", json=rows[:2], headers=AUTH)
    assert again.status_code == 202 and again.json()["accepted"] == body["accepted"]  # same records, same ids


def test_the_token_is_required(intake: str, make_nestor_row: Callable[..., dict[str, str]]) -> None:
    row = make_nestor_row("2020-01-02", "A7", "hose")
    assert httpx.post(f"{intake}/v1/records/nestor", json=row).status_code == 401
    wrong = httpx.post(f"{intake}/v1/records/nestor", json=row, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


def test_bad_requests_get_clear_statuses(intake: str, make_nestor_row: Callable[..., dict[str, str]]) -> None:
    post = lambda path, **kw: httpx.post(f"{intake}{path}", headers={**AUTH, **kw.pop("headers", {})}, **kw)  # noqa: E731
    big = json.dumps([make_nestor_row("2020-01-02", "A7", "x" * 30_000)])
    assert (
        post("/v1/records/nestor", content=big, headers={"Content-Type": "application/json"}).status_code
        == 413
    )
    assert (
        post(
            "/v1/records/nestor", content=b'{"a": ', headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert post("/v1/records/nestor", json=[]).status_code == 422
    assert post("/v1/records/no-such-mapping", json={}).status_code == 404
    assert post("/v1/records/nestor?tasks=translate", json={}).status_code == 422
    all_bad = post("/v1/records/nestor", json=[{"Asset": "A1"}])
    assert all_bad.status_code == 422 and all_bad.json()["accepted"] == []


def test_a_number_too_long_for_python_is_a_422_not_a_500(intake: str) -> None:
    """Found by the fuzz tests: json.loads raises a plain ValueError for an integer of over 4,300 digits."""
    body = b'[{"Asset": "A1", "n": ' + b"9" * 4_400 + b"}]"
    response = httpx.post(f"{intake}/v1/records/nestor", content=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {"detail": "body is not valid JSON: a number too long to read"}


def test_the_openapi_description_is_published(intake: str) -> None:
    spec = httpx.get(f"{intake}/openapi.json").json()
    operation = spec["paths"]["/v1/records/{mapping}"]["post"]
    assert {"202", "401", "413", "422", "503"} <= set(operation["responses"])


def test_no_token_no_intake(producer_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="NIGHTCLERK_WEBHOOK_TOKEN"):
        create_app(producer_settings)


def test_a_jira_webhook_body_is_taken_as_it_comes(
    intake: str, queued: Callable[[], list[ChunkMessage]]
) -> None:
    event = {
        "webhookEvent": "jira:issue_created",
        "issue": {"id": "10001", "key": "OPS-7", "fields": {
            "summary": "Grease pump alarm", "description": "Alarm at start-up, cleared after a restart.",
            "issuetype": {"name": "Incident"}, "priority": {"name": "High"}, "status": {"name": "Open"},
            "created": "2024-05-07T06:00:00.000+0000"}},
    }  # fmt: skip
    response = httpx.post(f"{intake}/v1/records/jira", json=event, headers=AUTH)
    assert response.status_code == 202 and response.json()["accepted"] == ["jira:OPS-7"]
    (document,) = [d for chunk in queued() for d in chunk.documents]
    assert document.text == "Grease pump alarm\n\nAlarm at start-up, cleared after a restart."


def test_no_redis_is_a_503_that_names_the_queue_not_the_text(
    producer_settings: Settings,
    serve_intake: Callable[[Settings], str],
    make_nestor_row: Callable[..., dict[str, str]],
    secret: str,
) -> None:
    nowhere = producer_settings.model_dump() | {
        "redis_url": "redis://127.0.0.1:1/0", "webhook_token": TOKEN, "publish_retry_s": 1,
    }  # fmt: skip
    intake = serve_intake(Settings.model_validate(nowhere))
    row = make_nestor_row("2020-01-02", "A7", f"hydraulic hose leaking {secret}")
    response = httpx.post(f"{intake}/v1/records/nestor", json=row, headers=AUTH, timeout=60)
    assert response.status_code == 503, response.text
    assert producer_settings.queue in response.json()["detail"] and secret not in response.text


def test_concurrent_requests_each_get_their_records_queued_once(
    intake: str, queued: Callable[[], list[ChunkMessage]], make_nestor_row: Callable[..., dict[str, str]]
) -> None:
    """Requests run on the server's threadpool at once, each thread sending on its own kept connections."""

    def post(number: int) -> list[str]:
        row = make_nestor_row("2020-01-02", f"C{number}", f"pump {number} leaking")
        response = httpx.post(f"{intake}/v1/records/nestor", json=row, headers=AUTH, timeout=30)
        assert response.status_code == 202, response.text
        return list(response.json()["accepted"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = [doc_id for ids in pool.map(post, range(48)) for doc_id in ids]
    expected = {f"nestor:C{number}-2020-01-02-1" for number in range(48)}
    assert sorted(accepted) == sorted(expected)
    on_queue = [doc.id for chunk in queued() for doc in chunk.documents]
    assert sorted(on_queue) == sorted(expected)  # each once: none lost, none sent twice
