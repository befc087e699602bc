"""The durable result store (SQLAlchemy Core): PostgreSQL, or an embedded SQLite file by default."""

from nightclerk.shared.store.dead_letters import DeadLetter, DeadLetterStore, Failure
from nightclerk.shared.store.result_store import ResultStore, open_store

__all__ = ["DeadLetter", "DeadLetterStore", "Failure", "ResultStore", "open_store"]
