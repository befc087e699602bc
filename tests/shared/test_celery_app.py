"""The delivery guarantees, read from the live app the workers and producers use."""

from __future__ import annotations

from nightclerk.shared.celery_app import get_app, make_celery
from nightclerk.shared.messages import PROCESS_CHUNK_TASK
from nightclerk.shared.settings import Settings


def test_live_app_holds_the_delivery_contract() -> None:
    conf = get_app().conf
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]  # a pickled message is refused
    assert conf.result_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.result_backend is None  # Celery's backend is not the store
    assert conf.task_ignore_result is True


def test_the_worker_task_carries_the_contract_name_and_flags() -> None:
    from nightclerk.workers.tasks import process_chunk

    assert process_chunk.name == PROCESS_CHUNK_TASK
    assert process_chunk.acks_late is True
    assert process_chunk.reject_on_worker_lost is True
    assert PROCESS_CHUNK_TASK in get_app().tasks


def test_settings_flow_into_the_app() -> None:
    app = make_celery(
        Settings(redis_url="redis://h:1/3", queue="q1", task_time_limit_s=100, visibility_timeout_s=200)
    )
    assert app.conf.broker_url == "redis://h:1/3"
    assert app.conf.task_default_queue == "q1"
    assert app.conf.broker_transport_options == {"visibility_timeout": 200}
