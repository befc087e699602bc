"""The durable result store (SQLAlchemy Core): PostgreSQL, or an embedded SQLite file by default."""

from nightclerk.shared.store.result_store import ResultStore, open_store

__all__ = ["ResultStore", "open_store"]
