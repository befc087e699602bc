"""Opening the broker's Redis in each URL form (the real servers are in tests/e2e/test_access.py)."""

from __future__ import annotations

import pytest

from nightclerk.shared.errors import ConfigError
from nightclerk.shared.redis_conn import connect, is_sentinel, safe_url


def test_credentials_and_key_paths_never_show() -> None:
    assert safe_url("redis://:s3cret@h:6379/0") == "redis://***@h:6379/0"
    assert safe_url("rediss://user:pw@h:6380/1?ssl_cert_reqs=required&ssl_keyfile=/k.pem") == (
        "rediss://***@h:6380/1"
    )
    assert safe_url("sentinel://:pw@s1:26379;sentinel://:pw@s2:26379/0") == (
        "sentinel://***@s1:26379;sentinel://***@s2:26379/0"
    )
    assert safe_url("redis://h:6379/0") == "redis://h:6379/0"


def test_a_sentinel_url_needs_its_master_and_sound_parts() -> None:
    url = "sentinel://s1:26379;sentinel://s2:26380/3"
    assert is_sentinel(url) and not is_sentinel("redis://h/0")
    with pytest.raises(ConfigError, match="SENTINEL_MASTER"):
        connect(url)
    with pytest.raises(ConfigError, match="not a Sentinel URL"):
        connect("sentinel://s1:26379;redis://s2:6379/0", sentinel_master="m")
    with pytest.raises(ConfigError, match="must be a number"):
        connect("sentinel://s1:26379/x", sentinel_master="m")
    client = connect(url, sentinel_master="mymaster")  # nothing is contacted until a command runs
    assert client.connection_pool.connection_kwargs["db"] == 3
