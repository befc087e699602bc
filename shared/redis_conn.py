"""One way to open a redis-py client on the broker's Redis, whatever form ``NIGHTCLERK_REDIS_URL`` takes.

- ``redis://[user:password@]host:port/db`` and ``unix://`` -- redis-py's own URL parsing;
- ``rediss://…`` -- TLS; ``?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.crt`` (and ``ssl_certfile``,
  ``ssl_keyfile`` for client certificates) are read by redis-py and by kombu alike;
- ``sentinel://[:password@]host:26379;sentinel://host2:26379/db`` -- Redis Sentinel, with the master's name
  in ``NIGHTCLERK_REDIS_SENTINEL_MASTER``. This is kombu's form of a Sentinel URL, so the Celery broker and
  the direct clients (change feed, leases, status, metrics) read the same setting. The password in the URL
  is the data node's; Sentinels that need one of their own are not supported.

Written here because redis-py parses only single-node URLs and kombu's Sentinel URL form is kombu's own.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from nightclerk.shared.errors import ConfigError

SENTINEL_SCHEME = "sentinel"


def is_sentinel(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def safe_url(url: str) -> str:
    """The URL without its credentials, for logs and messages."""
    shown = []
    for part in url.split(";"):
        if "@" in part:
            scheme, _, rest = part.partition("://")
            part = f"{scheme}://***@{rest.split('@', 1)[1]}"
        shown.append(part.split("?", 1)[0])  # query parameters may name key files
    return ";".join(shown)


def connect(
    url: str,
    *,
    sentinel_master: str | None = None,
    connect_timeout: float = 5.0,
    socket_timeout: float | None = 30.0,
) -> redis.Redis:
    """A client on the Redis that ``url`` names (its current master, behind Sentinel)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )
    if not sentinel_master:
        raise ConfigError(
            "a sentinel:// Redis URL needs NIGHTCLERK_REDIS_SENTINEL_MASTER (the master's name)"
        )
    nodes, password, db = _sentinel_parts(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
        nodes,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        sentinel_kwargs={"socket_connect_timeout": connect_timeout, "socket_timeout": connect_timeout},
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
        sentinel_master,
        db=db,
        password=password,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
    )
    return client


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str | None, int]:
    nodes: list[tuple[str, int]] = []
    password: str | None = None
    db = 0
    for part in url.split(";"):
        parsed = urlsplit(part.strip())
        if parsed.scheme != SENTINEL_SCHEME or not parsed.hostname:
            raise ConfigError(f"not a Sentinel URL part: {safe_url(part)}")
        nodes.append((parsed.hostname, parsed.port or 26379))
        if parsed.password:
            password = unquote(parsed.password)
        path = parsed.path.strip("/")
        if path:
            if not path.isdigit():
                raise ConfigError(f"the Redis database in {safe_url(part)} must be a number")
            db = int(path)
    return nodes, password, db
