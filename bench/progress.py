"""A progress bar on stderr that also reads well in CI logs."""

from __future__ import annotations

import sys
import time


class Progress:
    """A stderr line redrawn in place at a terminal; elsewhere (CI logs) one per 10 % or 10 s."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_decile = -1
        self._last_draw = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        decile = self.done * 10 // self.total
        if self.tty and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self._draw("\r", "\n" if self.done == self.total else "")
        elif not self.tty and (decile != self._last_decile or now - self._last_draw > 10):
            self._last_decile = decile
            self._last_draw = now
            self._draw("", "\n")

    def _draw(self, prefix: str, suffix: str) -> None:
        width = 30
        filled = width * self.done // self.total
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate else 0.0
        eta = f", {left:,.0f} s left" if self.done < self.total and self.done > 1 else ""
        clear = "\x1b[K" if self.tty else ""  # erase what a longer previous line left
        sys.stderr.write(
            f"{prefix}bench: {self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done:,}/{self.total:,} ({rate:,.0f}/s{eta}){clear}{suffix}"
        )
        sys.stderr.flush()
