"""A one-line progress bar on stderr, with no dependency: evaluation runs on a local model
take minutes, and a silent terminal looks like a hang."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``[#####-----] 12/25  1.8 s/case  case-id``; redrawn in place on a terminal, printed
    every tenth step (and at the end) otherwise, so CI logs stay short."""

    def __init__(self, label: str = "", stream: TextIO | None = None, width: int = 24) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._t0 = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, item: str) -> None:
        filled = self.width * done // max(total, 1)
        rate = (time.perf_counter() - self._t0) / max(done, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label}[{bar}] {done}/{total}  {rate:.1f} s/case  {item}"
        if self._tty:
            end = "\n" if done >= total else ""
            self.stream.write("\r\033[K" + line[:120] + end)
        elif done >= total or done % max(total // 10, 1) == 0:
            self.stream.write(line + "\n")
        self.stream.flush()
