"""The Celery app and the delivery guarantees nightclerk relies on.

At-least-once delivery: a chunk is acknowledged only after its results are stored (acks late), a chunk whose
worker died is handed back (reject on worker lost), a worker holds one chunk at a time (prefetch multiplier 1)
and Redis waits longer than the longest task before redelivering (visibility timeout > time limit). The
result store makes the effect exactly once. JSON only: a pickled message is refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery

from nightclerk.shared.messages import PROCESS_CHUNK_TASK
from nightclerk.shared.settings import Settings, get_settings


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": max(settings.task_time_limit_s - 30, settings.task_time_limit_s // 2),
        # Celery's result backend is not the store: results go to nightclerk's own table.
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": settings.queue,
        "task_routes": {PROCESS_CHUNK_TASK: {"queue": settings.queue}},
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "broker_connection_retry_on_startup": True,
        "worker_send_task_events": False,
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("nightclerk", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


@lru_cache(maxsize=1)
def get_app() -> Celery:
    """The process-wide app, configured from :func:`get_settings`."""
    return make_celery(get_settings())
