"""Motion of the simulated stage: queued straight moves at constant speed, feed hold, halt.

The simulated controllers keep one :class:`Motion`; it answers where the stage is at a given
moment (wall-clock seconds from ``time.monotonic``), so status reports and the simulated camera
see a stage that really takes time to move.
"""
from __future__ import annotations

import math

Position = tuple[float, float, float]


class Motion:
    """Straight-line moves executed one after the other at ``speed_mm_s``.

    Examples
    --------
    >>> m = Motion(speed_mm_s=10.0)
    >>> m.queue((10.0, 0.0, 0.0), now=0.0)
    1.0
    >>> m.position(0.5)
    (5.0, 0.0, 0.0)
    >>> m.idle(0.9), m.idle(1.0)
    (False, True)
    """

    def __init__(self, speed_mm_s: float = 200.0):
        if speed_mm_s <= 0:
            raise ValueError("the stage speed must be positive")
        self.speed_mm_s = float(speed_mm_s)
        self._pos: Position = (0.0, 0.0, 0.0)
        self._queue: list[tuple[Position, float, bool]] = []  # (goal, duration, jog)
        self._start: float | None = None  # when the head of the queue began (shifted by holds)
        self._held_at: float | None = None

    @property
    def held(self) -> bool:
        return self._held_at is not None

    @property
    def jogging(self) -> bool:
        return bool(self._queue) and self._queue[0][2]

    def target(self) -> Position:
        """Where the stage will be once every queued move is done."""
        return self._queue[-1][0] if self._queue else self._pos

    def _advance(self, now: float) -> float:
        t = self._held_at if self._held_at is not None else now
        while self._queue and self._start is not None and t >= self._start + self._queue[0][1]:
            goal, duration, _ = self._queue.pop(0)
            self._pos = goal
            self._start += duration
        if not self._queue:
            self._start = None
        return t

    def position(self, now: float) -> Position:
        t = self._advance(now)
        if not self._queue or self._start is None:
            return self._pos
        goal, duration, _ = self._queue[0]
        f = min(max((t - self._start) / duration, 0.0), 1.0) if duration > 0 else 1.0
        return tuple(p + (g - p) * f for p, g in zip(self._pos, goal))  # type: ignore[return-value]

    def idle(self, now: float) -> bool:
        self._advance(now)
        return not self._queue

    def queue(self, goal: Position, now: float, jog: bool = False) -> float:
        """Add a move to ``goal``; returns its duration in seconds."""
        self._advance(now)
        duration = math.dist(self.target(), goal) / self.speed_mm_s
        if not self._queue:
            self._start = self._held_at if self._held_at is not None else now
        self._queue.append((tuple(float(g) for g in goal), duration, jog))  # type: ignore[arg-type]
        return duration

    def hold(self, now: float) -> None:
        """Feed hold: freeze where the stage is (the rest of the queue waits)."""
        if self._held_at is None:
            self._advance(now)
            self._held_at = now

    def resume(self, now: float) -> None:
        if self._held_at is not None:
            if self._start is not None:
                self._start += now - self._held_at
            self._held_at = None

    def halt(self, now: float) -> None:
        """Stop at once and forget the queue (reset, alarm, jog cancel)."""
        self._pos = self.position(now)
        self._queue.clear()
        self._start = None
        self._held_at = None

    def home(self, now: float) -> float:
        self.halt(now)
        return self.queue((0.0, 0.0, 0.0), now)
