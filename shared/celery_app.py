"""The Celery app and the delivery guarantees nightclerk relies on.

At-least-once delivery: a chunk is acknowledged only after its results are stored (acks late), a chunk whose
worker died is handed back (reject on worker lost; on Redis, once it has been unacknowledged for the
visibility timeout, which every worker sweeps for), and a worker holds one chunk at a time (prefetch
multiplier 1). A chunk that runs past the visibility timeout is handed out again but not run twice: its
lease (``workers/leases.py``) sends the second copy back until the first is done. The result store makes
the effect exactly once. JSON only: a pickled message is refused.

Producers retry a send for ``publish_retry_s`` while Redis is away; workers reconnect without end.
The solo pool that ``nightclerk worker`` runs cannot enforce Celery's task time limits, so none are set.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery

from nightclerk.shared.messages import PROCESS_CHUNK_TASK
from nightclerk.shared.redis_conn import is_sentinel
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
        "broker_transport_options": transport_options(settings),
        "broker_connection_max_retries": None,  # a worker waits for Redis to come back, however long
        "task_publish_retry": True,
        "task_publish_retry_policy": publish_retry_policy(settings.publish_retry_s),
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


def transport_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "visibility_timeout": settings.visibility_timeout_s,
        # kombu sweeps for chunks of dead workers every interval x throttle seconds (default 10 x 10)
        "unacked_restore_interval": settings.restore_interval_s,
        "unacked_restore_throttle": 1,
        # a Redis that vanishes without closing the connection (failover, NAT) must not hang a send forever
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
    }
    if is_sentinel(settings.redis_url):
        options["master_name"] = settings.redis_sentinel_master
    return options


def publish_retry_policy(retry_s: float) -> dict[str, float]:
    """kombu's retry policy for a send: waits of 0, 0.5, 1, 1.5, 2, 2, … seconds adding up to ``retry_s``."""
    step, longest = 0.5, 2.0
    waited, retries = 0.0, 0
    while waited < retry_s:
        waited += min(retries * step, longest)
        retries += 1
    return {"max_retries": retries, "interval_start": 0, "interval_step": step, "interval_max": longest}


def make_celery(settings: Settings) -> Celery:
    app = Celery("nightclerk", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


@lru_cache(maxsize=1)
def get_app() -> Celery:
    """The process-wide app, configured from :func:`get_settings`."""
    return make_celery(get_settings())
