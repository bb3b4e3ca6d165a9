"""The replay cache's table: recorded LLM responses by request hash (`botlib.analysts.llm`)."""

from __future__ import annotations

from datetime import UTC, datetime

from botlib.clock import iso
from botlib.storage.store import Store

__all__ = ["LlmCache"]


class LlmCache:
    """Recorded responses in the `llm_cache` table, keyed by `cache_key`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> tuple[str, str] | None:
        """Return (raw response, output mode) for `key`, or None."""
        found = self.store.rows("SELECT response, output_mode FROM llm_cache WHERE key = ?", [key])
        return (found[0]["response"], found[0]["output_mode"]) if found else None

    def put(self, key: str, model: str, raw: str, output_mode: str) -> None:
        record = {"key": key, "model": model, "output_mode": output_mode, "response": raw}
        with self.store.transaction():
            self.store.db.table("llm_cache").upsert(
                record | {"created_at": iso(datetime.now(UTC))}, pk="key"
            )
