"""Sending again the chunks the ledger finds lost (``shared/ledger.py``), from a thread of each worker.

Every ``restore_interval_s`` one worker of the queue (a Redis lock decides which) looks for chunks on record
that nobody has begun, or nobody holds, for twice the visibility timeout, and sends each again as it was
signed. Its own Celery app and Redis connections: it runs beside the chunk the worker is processing.
"""

from __future__ import annotations

import threading

from nightclerk.shared import broker
from nightclerk.shared.chunk_sender import ChunkSender
from nightclerk.shared.logging import get_logger
from nightclerk.shared.settings import Settings
from nightclerk.workers import metrics
from nightclerk.workers.leases import ChunkLeases

log = get_logger(__name__)


class LedgerSweeper:
    def __init__(self, settings: Settings, leases: ChunkLeases, worker_id: str) -> None:
        self.settings = settings
        self.leases = leases
        self.worker_id = worker_id
        self.sender = ChunkSender(settings)
        self.lost_after_s = 2.0 * settings.visibility_timeout_s
        self.interval_s = settings.restore_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep_once(self) -> list[str]:
        """One sweep, if no other worker is sweeping; the chunks sent again."""
        ledger = self.sender.ledger
        lock = f"{self.settings.queue}:ledger:sweeping"
        if not ledger.client.set(lock, self.worker_id, nx=True, px=max(int(self.interval_s * 1000), 1000)):
            return []
        queue_empty = broker.queue_depth(self.settings) == 0
        lost = ledger.unaccounted(
            queue_empty=queue_empty, leased=self.leases.held, lost_after_s=self.lost_after_s
        )
        recovered = []
        for chunk_id in lost:
            entry = ledger.entry(chunk_id)
            if entry is None:  # finished meanwhile, or on record without its body: nothing to send
                ledger.done(chunk_id)
                continue
            self.sender.send_again(chunk_id, entry.message, entry.signature)
            metrics.CHUNKS_RECOVERED.inc()
            log.warning(
                "chunk_recovered", chunk_id=chunk_id, reason="unaccounted for", after_s=self.lost_after_s
            )
            recovered.append(chunk_id)
        return recovered

    def start(self) -> LedgerSweeper:
        self._thread = threading.Thread(target=self._loop, name="nightclerk-ledger-sweeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sender.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep_once()
            except Exception as exc:  # Redis away, or anything else: the next round tries again
                log.warning("ledger_sweep_failed", error=type(exc).__name__)
