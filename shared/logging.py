"""structlog configuration: JSON lines in production, readable lines in a terminal.

Standard-library loggers (Celery, kombu) go through the same processors, so everything a worker prints is
one format. Logs carry ids, counts and timings; :func:`drop_text_fields` removes any event key that would
hold document text, as a second line of defence behind code that never passes it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
import structlog.tracebacks

TEXT_KEYS = frozenset(
    {"text", "body", "transcription", "note", "abstract", "document", "documents", "summary"}
)


def drop_text_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in TEXT_KEYS.intersection(event_dict):
        event_dict[key] = "[dropped: may hold document text]"
    return event_dict


# Celery and kombu quote a refused or undecodable message's body in their log lines; a body holds documents.
_BODY_MARKERS = ("The full contents of the message body was", "body:", "raw:")


class WithholdMessageBodies(logging.Filter):
    """Cut a log line from Celery/kombu where it starts quoting a message body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("celery", "kombu")):
            message = record.getMessage()
            cut = min((i for i in (message.find(m) for m in _BODY_MARKERS) if i >= 0), default=-1)
            if cut >= 0:
                record.msg = message[:cut].rstrip() + " [message body withheld]"
                record.args = None
        return True


def configure_logging(*, json: bool = True, level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_text_fields,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([_exception_as_dict()] if json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(WithholdMessageBodies())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _exception_as_dict() -> Any:
    # show_locals=False: a traceback's local variables would hold document text.
    transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    return structlog.processors.ExceptionRenderer(transformer)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
