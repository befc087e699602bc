"""``nightclerk serve``: the webhook intake. A ticketing system (or anything else) POSTs records, which are
validated with a field mapping and enqueued exactly as ``nightclerk push`` enqueues a file's records.

``POST /v1/records/{mapping}?tasks=classify,summarize`` takes one JSON object or an array of them, shaped
as the mapping preset expects (``producers/mappings/``: only presets, never a path a caller could choose),
or what a ticketing system sends as is: a Jira webhook's ``{"issue": {...}}``, a search response's
``{"issues": [...]}``, ServiceNow's ``{"result": [...]}`` (``readers.records_in``).
It answers:

- 202 with the accepted document ids (the same record sent again gets the same id) and each rejected record's
  index and reason;
- 401 without the bearer token (``NIGHTCLERK_WEBHOOK_TOKEN``, compared in constant time);
- 413 past ``NIGHTCLERK_WEBHOOK_MAX_BYTES``, checked on the declared length and again as the body streams in;
- 422 when the body is not a JSON object or array, or when every record was rejected;
- 404 for an unknown mapping, 503 when Redis does not answer.

FastAPI publishes the OpenAPI description at ``/openapi.json`` (and ``/docs``). Reasons never quote a record's
content, and nothing of a request body is logged.

Requests send on Enqueuers lent from one :class:`EnqueuerPool` for the app's life (closed at shutdown), so
their Redis and Celery connections stay open between requests.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nightclerk.producers.chunking import Chunker
from nightclerk.producers.enqueue import EnqueuerPool
from nightclerk.producers.mapping import FieldMapping, load_preset
from nightclerk.producers.push import parse_tasks
from nightclerk.producers.readers import NUMBER_TOO_LONG, RecordError, records_in
from nightclerk.producers.validation import Accepted, Validator
from nightclerk.shared.errors import BrokerUnavailable, ConfigError, InputError
from nightclerk.shared.logging import get_logger
from nightclerk.shared.settings import Settings

log = get_logger(__name__)
SOURCE_NAME = "webhook"


class RejectedRecord(BaseModel):
    index: int  # 0-based position in the request's array (0 for a single object)
    document_id: str | None
    reason: str


class PushResult(BaseModel):
    accepted: list[str]
    rejected: list[RejectedRecord]
    chunks: int


@dataclass
class _Outcome:
    accepted: list[str] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    chunks: int = 0


def _records(body: bytes) -> list[dict[str, Any] | RecordError]:
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f": {exc.msg}: line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise HTTPException(422, f"body is not valid JSON{where}") from None
    except RecursionError:
        raise HTTPException(422, "body is not valid JSON: nested too deeply") from None
    except ValueError:  # an integer of more than 4,300 digits: valid JSON, but Python refuses to read it
        raise HTTPException(422, f"body is not valid JSON: {NUMBER_TOO_LONG}") from None
    records = records_in(value)
    if not records:
        raise HTTPException(422, "body must be a JSON object or a non-empty array of objects")
    return records


async def _limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the {limit}-byte limit")
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise HTTPException(413, f"body is over the {limit}-byte limit")
        parts.append(part)
    return b"".join(parts)


def create_app(settings: Settings) -> FastAPI:
    """The intake app; refuses to be built without a token (an open intake would take anyone's records)."""
    if settings.webhook_token is None or not settings.webhook_token.get_secret_value():
        raise ConfigError("set NIGHTCLERK_WEBHOOK_TOKEN: the webhook accepts only bearer-token requests")
    expected = f"Bearer {settings.webhook_token.get_secret_value()}".encode()
    senders = EnqueuerPool(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        senders.close()

    app = FastAPI(
        title="nightclerk intake",
        description="Push records for classification and summarization; they are validated and queued.",
        version="1",
        lifespan=lifespan,
    )

    def _enqueue(
        mapping: FieldMapping, tasks: list[str], records: list[dict[str, Any] | RecordError]
    ) -> _Outcome:
        chunker = Chunker.from_settings(tasks, settings)
        validator = Validator(
            mapping, max_text_bytes=settings.max_text_bytes, max_json_bytes=chunker.max_document_bytes
        )
        outcome = _Outcome()
        chunks = []
        for index, record in enumerate(records):
            result = validator.validate(SOURCE_NAME, index, record)
            if isinstance(result, Accepted):
                outcome.accepted.append(result.document.id)
                chunks += chunker.add(result.document, result.json_bytes)
            else:
                outcome.rejected.append(
                    RejectedRecord(index=index, document_id=result.document_id, reason=result.reason)
                )
        chunks += chunker.flush()
        with senders.lend() as sender:
            for queued, chunk in enumerate(chunks):
                try:
                    sender.send(chunk)
                except BrokerUnavailable as exc:
                    if not queued:
                        raise
                    raise BrokerUnavailable(
                        f"{exc}; {queued} of this request's {len(chunks)} chunks were already queued -- "
                        "sending the same records again is safe: document ids are stable"
                    ) from None
        outcome.chunks = len(chunks)
        return outcome

    @app.post(
        "/v1/records/{mapping}",
        status_code=202,
        response_model=PushResult,
        responses={
            401: {"description": "missing or wrong bearer token"},
            404: {"description": "unknown mapping"},
            413: {"description": "body over the size limit"},
            422: {"description": "body is not a JSON object or array, or every record was rejected"},
            503: {"description": "the queue (Redis) does not answer"},
        },
    )
    async def push_records(
        request: Request,
        mapping: str = Path(description="a mapping preset, e.g. nestor, mtsamples, pubmed"),
        tasks: str = Query("classify", description="comma-separated: classify, summarize"),
        authorization: str | None = Header(default=None),
    ) -> Any:
        if authorization is None or not secrets.compare_digest(authorization.encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
        body = await _limited_body(request, settings.webhook_max_bytes)
        try:
            field_mapping = load_preset(mapping)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from None
        try:
            task_names = parse_tasks(tasks)
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        records = _records(body)
        try:
            outcome = await run_in_threadpool(_enqueue, field_mapping, task_names, records)
        except BrokerUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        log.info(
            "webhook.push", mapping=mapping, accepted=len(outcome.accepted), rejected=len(outcome.rejected),
            chunks=outcome.chunks,
        )  # fmt: skip
        result = PushResult(accepted=outcome.accepted, rejected=outcome.rejected, chunks=outcome.chunks)
        if not outcome.accepted:
            return JSONResponse(status_code=422, content=result.model_dump())
        return result

    return app
