"""Paused runs in process memory (tests, a single process that need not survive a restart)."""

from __future__ import annotations

import threading
import time
from typing import Any

from callgate.runs.model import decode_state, encode_state


class MemoryRunStore:
    """In-process store. States are copied through JSON, like the durable stores, so a caller
    mutating its dict after `save` does not change what was saved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[float, str]] = {}

    def save(self, run_id: str, state: dict[str, Any]) -> None:
        text = encode_state(run_id, state)
        with self._lock:
            created = self._runs.get(run_id, (time.time(), ""))[0]
            self._runs[run_id] = (created, text)

    def load(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._runs.get(run_id)
        return decode_state(run_id, item[1]) if item else None

    def delete(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def list_paused(self) -> list[str]:
        with self._lock:
            items = sorted(self._runs.items(), key=lambda kv: kv[1][0])
        return [k for k, _ in items]
