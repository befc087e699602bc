"""Redis behind Sentinel: producers, workers, status and the change feed find the master through it.

The test starts its own master (with a password) and a Sentinel watching it; every nightclerk process is
given only the Sentinel's address and the master's name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

pytestmark = pytest.mark.slow

MASTER = "nightclerk-master"
PASSWORD = "sentinel-test-pass"


@pytest.fixture
def sentinel_url(
    private_redis: Callable[..., Any],
    tmp_path: Path,
    free_port: Callable[[], int],
    wait_for: Callable[..., Any],
) -> Iterator[str]:
    master = private_redis(password=PASSWORD)
    port = free_port()
    config = tmp_path / "sentinel.conf"  # Sentinel rewrites its configuration file: one of its own
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1\n"
        f"sentinel auth-pass {MASTER} {PASSWORD}\n"
        f"sentinel down-after-milliseconds {MASTER} 5000\n"
    )
    process = subprocess.Popen(
        ["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sentinel = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, decode_responses=True)

    def knows_the_master() -> bool:
        try:
            return sentinel.sentinel_get_master_addr_by_name(MASTER) == ("127.0.0.1", master.port)
        except redis.RedisError:
            return False

    wait_for(knows_the_master, 30, "the Sentinel to know the master", every=0.2)
    yield f"sentinel://:{PASSWORD}@127.0.0.1:{port}/0"
    sentinel.close()
    process.kill()
    process.wait()


def test_the_pipeline_finds_the_master_through_sentinel(
    sentinel_url: str,
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    push: Callable[..., Any],
    nightclerk: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    env = {**cluster_env, "redis_url": sentinel_url, "redis_sentinel_master": MASTER}
    cluster = make_cluster(env)
    store = cluster.store()
    try:
        cluster.start("a")
        push(tickets(60), env)
        wait_for(lambda: store.count() >= 60, 60, "the results")
        wait_for(cluster.drained, 60, "the queue to drain")
        status = nightclerk("status", "--wait-s", "2", env=env)
        feed = nightclerk("feed", "info", env=env)
        no_master = nightclerk("status", env={k: v for k, v in env.items() if k != "redis_sentinel_master"})
    finally:
        cluster.stop_all()
        store.close()
    assert status.returncode == 0 and "1 answered" in status.stdout, status.stdout + status.stderr
    assert feed.returncode == 0 and "60" in feed.stdout
    assert no_master.returncode == 2 and "NIGHTCLERK_REDIS_SENTINEL_MASTER" in no_master.stderr
    assert PASSWORD not in status.stdout + status.stderr + no_master.stderr + cluster.log_text()
