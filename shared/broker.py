"""Small direct looks at the Redis broker: is it there, how deep is a queue."""

from __future__ import annotations

import redis

from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.redis_conn import connect, safe_url
from nightclerk.shared.settings import Settings

START_HINT = (
    "start one with `docker compose up -d redis`, or `redis-server --daemonize yes`, "
    "or point NIGHTCLERK_REDIS_URL at yours"
)
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


def client(settings: Settings, timeout: float = 2.0) -> redis.Redis:
    return connect(
        settings.redis_url,
        sentinel_master=settings.redis_sentinel_master,
        connect_timeout=timeout,
        socket_timeout=timeout,
    )


def ping(settings: Settings, timeout: float = 2.0, *, using: redis.Redis | None = None) -> None:
    """Raise :class:`BrokerUnavailable` with a one-line hint when no Redis answers (on ``using``, a client
    already open on ``settings.redis_url``, or on a new one)."""
    url = safe_url(settings.redis_url)
    try:
        (using if using is not None else client(settings, timeout)).ping()
    except redis.AuthenticationError:
        raise BrokerUnavailable(f"Redis at {url} refused the credentials") from None
    except redis.ResponseError as exc:  # NOAUTH: a password is needed and none was given
        raise BrokerUnavailable(f"Redis at {url} refused the connection: {str(exc)[:80]}") from None
    except UNREACHABLE as exc:
        raise BrokerUnavailable(f"no Redis answers at {url} ({type(exc).__name__}); {START_HINT}") from None


def queue_depth(settings: Settings, queue: str | None = None) -> int:
    """Messages waiting in a Celery queue on Redis (kombu keeps each queue as a list of that name)."""
    try:
        return int(client(settings).llen(queue or settings.queue))
    except (*UNREACHABLE, redis.ResponseError) as exc:
        raise BrokerUnavailable(
            f"no Redis answers at {safe_url(settings.redis_url)} ({type(exc).__name__})"
        ) from None


def unacked_count(settings: Settings) -> int:
    """Messages delivered to a worker and not yet acknowledged (kombu's ``unacked`` hash)."""
    try:
        return int(client(settings).hlen("unacked"))
    except (*UNREACHABLE, redis.ResponseError) as exc:
        raise BrokerUnavailable(
            f"no Redis answers at {safe_url(settings.redis_url)} ({type(exc).__name__})"
        ) from None
