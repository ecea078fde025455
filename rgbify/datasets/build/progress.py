"""The build's progress as ``rgbify build`` shows it: a live bar on a terminal, whole lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichProgress:
    """The build's progress: samples done, rate, elapsed time, ETA, rejects, retries and worker restarts. A live
    rich bar on a terminal; elsewhere (a log file, a batch job's output) one plain line every ``interval`` seconds
    and at the end, as a live bar cannot redraw there."""

    def __init__(self, enabled: bool = True, interval: float = 30.0, stream: Any = None):
        self.enabled = enabled
        self.interval = interval
        self.stream = stream
        self._p: Any = None
        self._plain = False

    def start(self, stats: Any) -> None:
        if not self.enabled:
            return
        self._t0 = self._last = time.perf_counter()
        console = Console(file=self.stream or sys.stderr)
        if not console.is_terminal:
            self._plain = True
            self._line(stats)
            return
        self._p = Progress(TextColumn("[bold]rendering"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                           TimeRemainingColumn(), TextColumn("{task.fields[extra]}"), console=console)
        self._p.start()
        self._task = self._p.add_task("build", total=stats.total, completed=stats.done, rate="", extra="")

    def _rate(self, stats: Any) -> float:
        dt = time.perf_counter() - self._t0
        return stats.rendered / dt if dt > 0 else 0.0  # samples rendered by this run

    def _extra(self, stats: Any) -> str:
        return f"rejects {stats.rejects}  retries {stats.retried}  restarts {stats.restarts}"

    def _line(self, stats: Any) -> None:
        self._last = time.perf_counter()
        rate = self._rate(stats)
        left = stats.total - stats.done
        eta = _clock(left / rate) if rate > 0 else "?" if left else _clock(0)
        print(f"rendering {stats.done}/{stats.total}  {rate:.2f} samples/s  {_clock(self._last - self._t0)}  "
              f"ETA {eta}  {self._extra(stats)}", file=self.stream or sys.stderr, flush=True)

    def update(self, stats: Any) -> None:
        if self._plain:
            if time.perf_counter() - self._last >= self.interval:
                self._line(stats)
            return
        if self._p is None:
            return
        rate = self._rate(stats)
        self._p.update(self._task, completed=stats.done, rate=f"{rate:.2f} samples/s" if rate else "",
                       extra=self._extra(stats))

    def stop(self, stats: Any) -> None:
        if self._plain:
            self._line(stats)
            self._plain = False
        elif self._p is not None:
            self.update(stats)
            self._p.stop()
            self._p = None


def _clock(seconds: float) -> str:
    """seconds as H:MM:SS."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
