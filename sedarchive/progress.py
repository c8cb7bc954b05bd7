"""Progress for the terminal: a bar on a terminal (tqdm), a line now and then in a log.

Every long step reports through :class:`ProgressBar` (counted work: tasks, grains, epochs) or
:func:`heartbeat` (a step that cannot count, e.g. UMAP's fit), so no step stays silent. On a
terminal the bar redraws in place; when stderr is a file or pipe (batch jobs, CI) it writes one line
at most every ``every_s`` seconds and at the end. ``SEDARCHIVE_PROGRESS=bar`` or ``lines`` forces
either.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO


def use_bars(stream: TextIO) -> bool:
    """Bars on a terminal (or when ``SEDARCHIVE_PROGRESS=bar``), lines otherwise."""
    forced = os.environ.get("SEDARCHIVE_PROGRESS", "").lower()
    if forced in ("bar", "bars"):
        return True
    if forced in ("line", "lines"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class ProgressBar:
    """``total`` units of work (None: unknown), shown as a bar or as occasional lines.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(4, "encode", unit="sample", stream=out, bars=False, every_s=0)
    >>> for _ in range(4): bar.update()
    >>> bar.close()
    >>> out.getvalue().splitlines()[-1].startswith("encode: 4/4 sample")
    True
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", quiet: bool = False,
                 stream: TextIO | None = None, bars: bool | None = None, every_s: float = 10.0):
        self.stream = stream if stream is not None else sys.stderr
        self.desc, self.unit, self.total, self.quiet, self.every_s = desc, unit, total, quiet, every_s
        self.n, self.postfix = 0, ""
        self.start = self._last = time.monotonic()
        self._bar: Any = None
        if not quiet and (use_bars(self.stream) if bars is None else bars):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=True)

    @property
    def shows_bar(self) -> bool:
        """True when a bar is drawn (a terminal), False when lines are written (or nothing, quiet)."""
        return self._bar is not None

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """Count ``n`` more units done (and show ``postfix``, e.g. a loss)."""
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        if self.quiet:
            return
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._line()

    def write(self, message: str) -> None:
        """A line of its own (a failure, a note) without breaking the bar."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        of = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and self.n:
            eta = f", about {elapsed / self.n * (self.total - self.n):.0f} s left"
        count = f"{self.n}{of} {self.unit}" if (self.total or self.n) else ""
        text = " ".join(t for t in (count, self.postfix) if t)
        print(f"{self.desc}: {text} ({elapsed:.1f} s{eta})", file=self.stream, flush=True)

    def close(self) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            self._line()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def heartbeat(desc: str, *, quiet: bool = False, stream: TextIO | None = None, bars: bool | None = None,
              every_s: float = 15.0) -> Iterator[ProgressBar]:
    """Show that a step that cannot count its work is still running (elapsed time, redrawn every second)."""
    bar = ProgressBar(None, desc, unit="s", quiet=quiet, stream=stream, bars=bars, every_s=every_s)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(1.0):
            if bar._bar is not None:
                bar._bar.refresh()  # redraws the elapsed time
            else:
                bar.update(0, postfix="still running")

    thread = threading.Thread(target=beat, daemon=True)
    if not quiet:
        thread.start()
    try:
        yield bar
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=2)
        bar.postfix = "done"
        bar.close()
