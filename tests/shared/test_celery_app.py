"""The delivery guarantees, read from the live app the workers and producers use."""

from __future__ import annotations

from nightclerk.shared.celery_app import get_app, make_celery, publish_retry_policy
from nightclerk.shared.messages import PROCESS_CHUNK_TASK
from nightclerk.shared.settings import Settings, get_settings


def test_live_app_holds_the_delivery_contract() -> None:
    conf = get_app().conf
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]  # a pickled message is refused
    assert conf.result_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    options = conf.broker_transport_options
    assert (
        options["visibility_timeout"] > get_settings().retry_backoff_max_s
    )  # a delayed retry is not doubled
    assert options["unacked_restore_throttle"] == 1  # a dead worker's chunk is swept every interval
    assert conf.broker_connection_max_retries is None  # a worker waits for Redis however long
    assert conf.task_publish_retry is True
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
        Settings(redis_url="redis://h:1/3", queue="q1", visibility_timeout_s=400, restore_interval_s=2.5)
    )
    assert app.conf.broker_url == "redis://h:1/3"
    assert app.conf.task_default_queue == "q1"
    options = app.conf.broker_transport_options
    assert (options["visibility_timeout"], options["unacked_restore_interval"]) == (400, 2.5)
    assert "master_name" not in options


def test_a_sentinel_url_names_its_master() -> None:
    settings = Settings(
        redis_url="sentinel://s1:26379;sentinel://s2:26379/2", redis_sentinel_master="nightclerk-master"
    )
    assert make_celery(settings).conf.broker_transport_options["master_name"] == "nightclerk-master"


def test_a_send_is_retried_for_about_the_configured_time() -> None:
    for seconds in (0.0, 5.0, 60.0, 600.0):
        policy = publish_retry_policy(seconds)
        waits = [
            min(policy["interval_start"] + i * policy["interval_step"], policy["interval_max"])
            for i in range(int(policy["max_retries"]))
        ]
        assert seconds <= sum(waits) < seconds + policy["interval_max"] + 0.001
