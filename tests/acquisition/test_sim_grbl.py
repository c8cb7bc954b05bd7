"""The simulated controller against GRBL 1.1h's observed behaviour (grbl-sim), byte by byte over a pty.

The controller runs on a hand-driven clock here, so the 500 ms alarm delay, decelerations and
homing take no real time and each step is deterministic.
"""
from __future__ import annotations

import time

import pytest

from acquisition.serial_link import SerialLink
from acquisition.sim.controller import SimulatedController


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
        time.sleep(0.02)  # let the controller's loop see the new time (timers, held replies)


class Terminal:
    """A serial terminal on the controller's pty: lines and real-time bytes in, lines out."""

    def __init__(self, controller: SimulatedController):
        self.link = SerialLink(controller.port)
        self.link.open()

    def send(self, line: str) -> None:
        self.link.write(line.encode("ascii") + b"\n")

    def byte(self, data: bytes) -> None:
        self.link.write(data)

    def read(self, first_s: float = 0.5, quiet_s: float = 0.1) -> list[str]:
        """The lines that come: the first within ``first_s``, the rest until ``quiet_s`` of silence."""
        first = self.link.read_line(first_s)
        return [] if first is None else [first, *self.link.drain(quiet_s)]

    def ask(self, line: str) -> list[str]:
        self.send(line)
        return self.read()

    def status(self) -> str:
        self.byte(b"?")
        reports = [line for line in self.read() if line.startswith("<")]
        assert len(reports) == 1, reports
        return reports[0]

    def close(self) -> None:
        self.link.close()


@pytest.fixture
def grbl():
    """``grbl(**controller_options)`` -> (controller, terminal, clock); the banner is read already."""
    opened = []

    def make(**options):
        clock = Clock()
        controller = SimulatedController(clock=clock, **options).start()
        terminal = Terminal(controller)
        opened.append((controller, terminal))
        terminal.byte(b"\x18")
        assert "Grbl 1.1h ['$' for help]" in terminal.read()
        return controller, terminal, clock

    yield make
    for controller, terminal in opened:
        terminal.close()
        controller.close()


def test_settings_accepted_and_refused_as_grbl_does(grbl):
    controller, term, _ = grbl(homing=False)
    assert term.ask("$Q") == ["error:2"]
    assert term.ask("$999=1") == ["error:3"]
    assert term.ask("$130=-5") == ["error:4"]
    assert term.ask("G1 X1 F-100") == ["error:4"]
    assert term.ask("$20=1") == ["error:10"]  # soft limits need homing
    for setting in ("$10=0", "$13=1", "$10=1", "$13=0", "$22=1", "$20=1"):
        assert term.ask(setting) == ["ok"], setting
    settings = term.ask("$$")
    assert "$20=1" in settings and "$22=1" in settings and "$100=250.000" in settings and settings[-1] == "ok"
    for line in ("G10 L20 P1 X0 Y0 Z0", "G53 G0 X-1", "G92 X0", "G92.1", "G10 L2 P1 X0 Y0 Z0"):
        assert term.ask(line) == ["ok"], line


def test_soft_limits_only_with_20_and_in_machine_coordinates(grbl):
    controller, term, clock = grbl(travel_mm=(10.0, 10.0, 5.0))
    assert term.ask("$J=G91 X50 F600") == ["ok"]  # no soft limits: a jog anywhere is accepted
    term.byte(b"\x85")
    clock.advance(5.0)
    assert term.ask("G0 X-500") == ["ok"]  # and so is a move
    clock.advance(10.0)
    assert term.status().startswith("<Idle|MPos:-500.000")
    controller, term, clock = grbl(travel_mm=(10.0, 10.0, 5.0), soft_limits=True)
    assert term.ask("G0 X-5") == ["ok"]  # machine coordinates [-$130, 0]
    assert term.ask("$J=G90 X-6 F600") == ["error:8"]  # not while the move runs
    clock.advance(1.0)
    assert term.ask("$J=G90 X-20 F600") == ["error:15"]  # a jog beyond travel is refused
    assert term.ask("$J=G90 X5 F600") == ["error:15"]


def test_soft_limit_alarm_locks_until_reset_and_ignores_an_early_reset(grbl):
    controller, term, clock = grbl(soft_limits=True, travel_mm=(10.0, 10.0, 5.0))
    assert term.ask("G0 X5") == ["ALARM:2"]  # no ok: the line hangs
    term.byte(b"\x18")  # within 500 ms of the ALARM line: lost
    assert term.read() == []
    clock.advance(0.6)
    assert term.read() == ["[MSG:Reset to continue]"]
    term.byte(b"?")
    term.send("$X")
    term.send("G0 X-1")
    assert term.read() == []  # nothing is answered, not even '?'
    term.byte(b"\x18")
    assert term.read() == ["ok", "Grbl 1.1h ['$' for help]", "[MSG:'$H'|'$X' to unlock]"]  # the hung line's ok first
    assert term.status().startswith("<Alarm|")
    assert term.ask("G0 X-1") == ["error:9"]
    assert term.ask("$X") == ["[MSG:Caution: Unlocked]", "ok"]


def test_hard_limit_alarm_and_the_switch_in_reports(grbl):
    controller, term, clock = grbl(hard_limits=True)
    assert "|Pn:" not in term.status()
    controller.press_limit("X")
    assert term.read() == ["ALARM:1"]
    clock.advance(0.6)
    assert term.read() == ["[MSG:Reset to continue]"]
    term.byte(b"\x18")  # the switch is still pressed at the reset
    assert term.read() == ["Grbl 1.1h ['$' for help]", "[MSG:Check Limits]", "[MSG:'$H'|'$X' to unlock]"]
    report = term.status()
    assert report.startswith("<Alarm|") and "|Pn:X" in report
    controller.release_limit("X")
    assert "|Pn:" not in term.status()


def test_reset_after_a_finished_hold_keeps_the_position_and_in_motion_alarms(grbl):
    controller, term, clock = grbl(speed_mm_s=10.0, accel_mm_s2=100.0)
    assert term.ask("G0 X10") == ["ok"]
    clock.advance(0.3)
    term.byte(b"!")
    assert term.status().startswith("<Hold:1|")  # decelerating
    clock.advance(0.05)
    assert term.status().startswith("<Hold:1|")
    clock.advance(0.1)  # 10 mm/s at 100 mm/s² stops within 0.1 s
    held = term.status()
    assert held.startswith("<Hold:0|MPos:3.500,")  # 3 mm in 0.3 s, then 0.5 mm of braking
    clock.advance(1.0)
    assert term.status().startswith("<Hold:0|MPos:3.500,")  # it stays held
    term.byte(b"\x18")
    assert term.read() == ["Grbl 1.1h ['$' for help]"]
    assert term.status().startswith("<Idle|MPos:3.500,0.000,0.000")
    assert term.ask("G0 X10") == ["ok"]
    clock.advance(0.2)
    term.byte(b"\x18")  # in motion: the position is lost
    assert term.read() == ["ALARM:3"]
    clock.advance(0.6)
    assert term.read() == ["Grbl 1.1h ['$' for help]", "[MSG:'$H'|'$X' to unlock]"]
    assert term.status().startswith("<Alarm|MPos:5.500,")


def test_jog_cancel_decelerates_in_jog(grbl):
    controller, term, clock = grbl(speed_mm_s=100.0, accel_mm_s2=200.0)
    assert term.ask("$J=G91 X50 F3000") == ["ok"]  # 50 mm/s
    clock.advance(0.2)
    term.byte(b"\x85")
    assert term.status().startswith("<Jog|")
    clock.advance(0.1)
    assert term.status().startswith("<Jog|")  # 0.25 s to stop from 50 mm/s
    clock.advance(0.2)
    assert term.status().startswith("<Idle|MPos:16.252,")  # 10 mm, then 6.25 mm of braking, to a whole step


def test_positions_are_whole_steps_and_fs_shows_the_rapid_rate(grbl):
    controller, term, clock = grbl(speed_mm_s=10.0)  # $110-$112 = 600 mm/min
    assert term.ask("G0 X2.25") == ["ok"]
    clock.advance(0.1)
    assert "|FS:600,0" in term.status()  # G0 at the axis's maximum rate
    clock.advance(1.0)
    report = term.status()
    assert report.startswith("<Idle|MPos:2.252,0.000,0.000|FS:0,0")  # 562.5 steps round to 563
    assert controller.position == (2.252, 0.0, 0.0)


def test_report_fields_follow_10_and_13_and_wco_and_ov_come_when_grbl_sends_them(grbl):
    controller, term, clock = grbl(work_offset=(1.0, 2.0, 0.0))
    first, second = term.status(), term.status()
    assert first == "<Idle|MPos:0.000,0.000,0.000|FS:0,0|WCO:1.000,2.000,0.000>"  # WCO first after a reset
    assert second == "<Idle|MPos:0.000,0.000,0.000|FS:0,0|Ov:100,100,100>"  # Ov on the next
    reports = [term.status() for _ in range(20)]
    assert [i for i, r in enumerate(reports) if "WCO" in r] == [8, 18]  # every 10 reports while idle
    assert term.ask("G10 L2 P1 X4") == ["ok"]
    assert "|WCO:4.000,2.000,0.000" in term.status()  # at once after G10
    assert term.ask("G0 X1") == ["ok"]
    clock.advance(0.1)
    assert "|Ov:100,100,100" in term.status()  # after a move
    assert term.ask("$10=0") == ["ok"]
    assert term.status().startswith("<Idle|WPos:1.000,-2.000,0.000|")  # machine X 5 = work X 1 + offset 4
    assert term.ask("$10=2") == ["ok"]
    assert term.status().startswith("<Idle|WPos:1.000,-2.000,0.000|Bf:15,128|FS:0,0")
    assert term.ask("$10=1") == ["ok"] and term.ask("$13=1") == ["ok"]
    assert term.status().startswith("<Idle|MPos:0.1969,0.0000,0.0000|FS:0.0,0")  # 5 mm in inches
    assert term.ask("G0 X0") == ["ok"]  # G21 still governs the input


def test_homing_answers_when_done_and_leaves_minus_the_pull_off(grbl):
    controller, term, clock = grbl(homing=False)
    assert term.ask("$H") == ["error:5"]
    controller, term, clock = grbl(start_in_alarm=True, settings={24: 100.0, 25: 600.0})
    assert term.ask("G0 X1") == ["error:9"]
    assert term.ask("$H") == []  # no ok while homing
    assert term.status().startswith("<Home|")
    clock.advance(2.0)
    assert term.read() == ["ok"]
    assert term.status().startswith("<Idle|MPos:-1.000,-1.000,-1.000|")


def test_g4_answers_once_the_planner_is_empty_while_idle_can_come_first(grbl):
    controller, term, clock = grbl(speed_mm_s=10.0, start_delay_s=0.05)
    assert term.ask("G0 Z1.03") == ["ok"]
    assert term.status().startswith("<Idle|MPos:0.000,0.000,0.000|")  # queued, not started: Idle at the old Z
    term.send("G4 P0.01")
    assert term.read() == []
    clock.advance(0.2)  # the move ended at 0.153 s, the dwell at 0.163 s
    assert term.read() == ["ok"]
    assert term.status().startswith("<Idle|MPos:0.000,0.000,1.032|")
