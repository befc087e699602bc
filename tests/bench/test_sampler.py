from __future__ import annotations

import os
import subprocess
import sys
import uuid

import redis

from bench.sampler import MIB, PeakSampler, tree_pss


def test_tree_pss_counts_children() -> None:
    alone = tree_pss([os.getpid()])
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = bytearray(64 * 2**20); sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        grown = alone
        for _ in range(200):  # until the child has its 64 MiB
            grown = tree_pss([os.getpid()])
            if grown - alone > 60 * MIB:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert grown - alone > 60 * MIB
        # counted once: not equal, since a process's PSS moves as other processes map and unmap the pages it
        # shares with them (CI failed on 70.0 vs 68.4 MiB); twice would be 2x
        once, listed_twice = tree_pss([child.pid]), tree_pss([child.pid, child.pid])
        assert 0.8 * once < listed_twice < 1.25 * once
    finally:
        child.communicate(b"")
    assert tree_pss([child.pid]) == 0  # gone: skipped, not an error


def test_peak_sampler_sees_redis_growth_and_not_what_was_there(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"nightclerk-test-{uuid.uuid4().hex[:8]}"
    try:
        with PeakSampler(lambda: [os.getpid()], redis_url, interval=0.05) as sampler:
            client.set(key, b"x" * (8 * MIB))
        assert 7.5 < sampler.peak_redis_mib < 32  # the value, plus its transient query buffer
        assert sampler.peak_pss_mib > 10
    finally:
        client.delete(key)
