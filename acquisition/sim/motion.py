"""Motion of the simulated stage: queued straight moves, feed hold and jog cancel that decelerate, halt.

The simulated controllers keep one :class:`Motion`; it answers where the stage is at a given
moment (seconds of the controller's clock), so status reports and the simulated camera see a
stage that really takes time to move. Moves run at their own rate (the firmware works it out from
``$110-$112`` or ``F``); a feed hold or a jog cancel decelerates at ``accel_mm_s2`` (``Hold:1``,
then ``Hold:0``), a reset or an alarm stops at once. ``start_delay_s`` is the gap between queueing a
block and its cycle start, during which GRBL still reports ``Idle`` at the old position.
"""
from __future__ import annotations

import math

Position = tuple[float, float, float]


class Motion:
    """Straight-line moves executed one after the other.

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

    def __init__(self, speed_mm_s: float = 200.0, *, accel_mm_s2: float = 2000.0, start_delay_s: float = 0.0):
        if speed_mm_s <= 0 or accel_mm_s2 <= 0:
            raise ValueError("the stage speed and acceleration must be positive")
        self.speed_mm_s = float(speed_mm_s)
        self.accel_mm_s2 = float(accel_mm_s2)
        self.start_delay_s = float(start_delay_s)
        self._pos: Position = (0.0, 0.0, 0.0)
        self._queue: list[tuple[Position, float, bool]] = []  # (goal, rate mm/s, jog)
        self._start: float | None = None  # when the head of the queue began moving
        self._stop: tuple[float, Position, Position, float, float] | None = None  # decelerating: t0, p0, unit, v, t_d
        self._held = False
        self._drop_jogs = False  # a jog cancel: the decelerated jog and the jogs behind it are dropped
        self.finished_at = -math.inf  # when the planner last became empty

    # -- state ----------------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        return self._held

    @property
    def queued(self) -> int:
        """Blocks in the planner (the one running included)."""
        return len(self._queue)

    @property
    def jogging(self) -> bool:
        return bool(self._queue) and self._queue[0][2]

    def target(self) -> Position:
        """Where the stage will be once every queued move is done."""
        return self._queue[-1][0] if self._queue else self._pos

    def decelerating(self, now: float) -> bool:
        self._advance(now)
        return self._stop is not None and now < self._stop[0] + self._stop[4]

    def started(self, now: float) -> bool:
        """Whether the head move has begun (cycle start happened)."""
        self._advance(now)
        return bool(self._queue) and self._start is not None and now >= self._start and not self._held

    def in_motion(self, now: float) -> bool:
        """Moving or decelerating (a reset now loses the position: ``ALARM:3``)."""
        return self.decelerating(now) or (self.started(now) and self._stop is None)

    def rate(self, now: float) -> float:
        """Speed now (mm/s)."""
        if self.decelerating(now):
            t0, _, _, v, _ = self._stop  # type: ignore[misc]
            return max(v - self.accel_mm_s2 * (now - t0), 0.0)
        return self._queue[0][1] if self.in_motion(now) else 0.0

    # -- time -----------------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        if self._stop is not None:
            t0, p0, unit, v, t_d = self._stop
            if now >= t0 + t_d:  # stopped: the hold is complete or the jog cancel done
                d = v * t_d / 2
                self._pos = tuple(p + u * d for p, u in zip(p0, unit))  # type: ignore[assignment]
                self._stop = None
                if self._drop_jogs:
                    self._queue = [q for q in self._queue if not q[2]]
                    self._drop_jogs = False
                    self._start = now if self._queue else None
                    if not self._queue:
                        self.finished_at = t0 + t_d
                else:
                    self._start = None  # waits for a resume
            return
        if self._held:
            return
        while self._queue and self._start is not None:
            goal, rate, _ = self._queue[0]
            duration = math.dist(self._pos, goal) / rate
            if now < self._start + duration:
                break
            self._queue.pop(0)
            self._pos = goal
            self._start += duration
            if not self._queue:
                self.finished_at = self._start
        if not self._queue:
            self._start = None

    def position(self, now: float) -> Position:
        self._advance(now)
        if self._stop is not None:
            t0, p0, unit, v, _ = self._stop
            t = now - t0
            d = v * t - self.accel_mm_s2 * t * t / 2
            return tuple(p + u * d for p, u in zip(p0, unit))  # type: ignore[return-value]
        if not self._queue or self._start is None or self._held or now <= self._start:
            return self._pos
        goal, rate, _ = self._queue[0]
        length = math.dist(self._pos, goal)
        f = min((now - self._start) * rate / length, 1.0) if length > 0 else 1.0
        return tuple(p + (g - p) * f for p, g in zip(self._pos, goal))  # type: ignore[return-value]

    def idle(self, now: float) -> bool:
        """No move queued or running (the planner is empty)."""
        self._advance(now)
        return not self._queue and self._stop is None

    # -- commands -------------------------------------------------------------------------------
    def queue(self, goal: Position, now: float, jog: bool = False, rate_mm_s: float | None = None) -> float:
        """Add a move to ``goal``; returns its duration in seconds."""
        self._advance(now)
        rate = float(rate_mm_s or self.speed_mm_s)
        duration = math.dist(self.target(), goal) / rate
        if not self._queue and self._stop is None:
            self._start = now + self.start_delay_s
        self._queue.append((tuple(float(g) for g in goal), rate, jog))  # type: ignore[arg-type]
        return duration

    def _decelerate(self, now: float) -> None:
        """Start a controlled stop along the head move (no further than its end)."""
        p = self.position(now)
        goal, rate, _ = self._queue[0]
        remaining = math.dist(p, goal)
        if remaining <= 0:
            self._stop = (now, p, (0.0, 0.0, 0.0), 0.0, 0.0)
            return
        unit = tuple((g - q) / remaining for g, q in zip(goal, p))
        v = rate
        distance = min(v * v / (2 * self.accel_mm_s2), remaining)
        v = min(v, math.sqrt(2 * self.accel_mm_s2 * distance)) if distance < remaining else v
        t_d = 2 * distance / v if v > 0 else 0.0
        self._pos = p
        self._stop = (now, p, unit, v, t_d)  # type: ignore[assignment]

    def hold(self, now: float) -> None:
        """Feed hold: decelerate to a stop (``Hold:1``), then wait (``Hold:0``) for :meth:`resume`."""
        if self._held:
            return
        if self.in_motion(now) and self._stop is None:
            self._decelerate(now)
        self._held = True

    def resume(self, now: float) -> None:
        if self._held and not self.decelerating(now):
            self._held = False
            self._advance(now)
            if self._queue:
                self._start = now

    def cancel_jog(self, now: float) -> None:
        """Jog cancel: a running jog decelerates to a stop, queued jogs are dropped."""
        if not self.jogging:
            return
        if self.in_motion(now) and self._stop is None:
            self._decelerate(now)
            self._drop_jogs = True
        elif self._stop is None:
            self._queue = [q for q in self._queue if not q[2]]

    def halt(self, now: float) -> None:
        """Stop at once and forget the queue (reset, alarm)."""
        self._pos = self.position(now)
        self.finished_at = now
        self._queue.clear()
        self._start = None
        self._stop = None
        self._held = False
        self._drop_jogs = False

    def place(self, position: Position) -> None:
        """Put the stage somewhere without moving (the end of a homing cycle)."""
        self._pos = tuple(float(v) for v in position)  # type: ignore[assignment]
