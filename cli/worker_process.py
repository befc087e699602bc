"""A ``nightclerk worker`` in a child process: started, waited for, stopped. Used by the demo and bench."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from nightclerk.shared.errors import NightclerkError

READY_MARK = " ready."  # Celery's "<hostname> ready." once the worker consumes


def nightclerk_env(settings: Mapping[str, object], *, inherit: bool = True) -> dict[str, str]:
    """This process's environment with ``settings`` over its ``NIGHTCLERK_*`` variables: strings as they
    are, anything else (a dict of packs, a list) as JSON, the way pydantic-settings reads it back.

    ``inherit``: the caller's other ``NIGHTCLERK_*`` stay, so the worker reads what the caller's own
    settings read (a ``NIGHTCLERK_REDIS_URL`` reaches both the push and the worker); False drops them all,
    for tests that must not see a developer's environment."""
    env = {k: v for k, v in os.environ.items() if inherit or not k.startswith("NIGHTCLERK_")}
    env.update(
        {
            f"NIGHTCLERK_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
            for key, value in settings.items()
        }
    )
    return env


class WorkerProcess:
    """Run a worker with ``NIGHTCLERK_*`` overrides; its log goes to ``log_path``."""

    def __init__(
        self,
        settings: Mapping[str, object],
        log_path: Path,
        *,
        ready_timeout: float = 120.0,
        inherit: bool = True,
    ) -> None:
        self.env = nightclerk_env(settings, inherit=inherit)
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Launch the worker and wait until it consumes."""
        return self.launch().wait_ready()

    def launch(self) -> WorkerProcess:
        """Launch the worker without waiting for it (see :meth:`ready`, :meth:`wait_ready`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nightclerk.cli.main", "worker"],
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        return self

    def ready(self) -> bool:
        """Alive and consuming."""
        alive = self.process is not None and self.process.poll() is None
        return alive and READY_MARK in self.log_path.read_text(errors="replace")

    def wait_ready(self) -> WorkerProcess:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NightclerkError(
                    f"the worker exited with status {self.process.returncode}; see {self.log_path}"
                )
            if READY_MARK in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.2)
        self.stop()
        raise NightclerkError(
            f"the worker was not ready within {self.ready_timeout:.0f}s; see {self.log_path}"
        )

    def kill(self) -> int | None:
        """SIGKILL, as a dying machine would: no warm shutdown, the chunk in hand is left unacknowledged."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.kill()
        return self.process.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        """Warm shutdown (SIGTERM): the chunk in hand is finished; kill after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
