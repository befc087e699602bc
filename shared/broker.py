"""Small direct looks at the Redis broker: is it there, how deep is a queue."""

from __future__ import annotations

import redis

from nightclerk.shared.errors import BrokerUnavailable

START_HINT = (
    "start one with `docker compose up -d redis`, or `redis-server --daemonize yes`, "
    "or point NIGHTCLERK_REDIS_URL at yours"
)


def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _safe_url(url: str) -> str:
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def ping(url: str, timeout: float = 2.0) -> None:
    """Raise :class:`BrokerUnavailable` with a one-line hint when no Redis answers at ``url``."""
    try:
        _client(url, timeout).ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise BrokerUnavailable(
            f"no Redis answers at {_safe_url(url)} ({type(exc).__name__}); {START_HINT}"
        ) from None
    except redis.AuthenticationError:
        raise BrokerUnavailable(f"Redis at {_safe_url(url)} refused the credentials") from None


def queue_depth(url: str, queue: str) -> int:
    """Messages waiting in a Celery queue on Redis (kombu keeps each queue as a list of that name)."""
    try:
        return int(_client(url, 2.0).llen(queue))
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise BrokerUnavailable(f"no Redis answers at {_safe_url(url)} ({type(exc).__name__})") from None


def unacked_count(url: str) -> int:
    """Messages delivered to a worker and not yet acknowledged (kombu's ``unacked`` hash)."""
    try:
        return int(_client(url, 2.0).hlen("unacked"))
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise BrokerUnavailable(f"no Redis answers at {_safe_url(url)} ({type(exc).__name__})") from None
