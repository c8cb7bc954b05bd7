"""The Marlin driver against the simulated Marlin 2 board, through pyserial and a pseudo-terminal."""
from __future__ import annotations

import pytest

from acquisition.errors import StageAlarm, StageError
from acquisition.marlin import MarlinStage
from acquisition.sim.controller import Fault, SimulatedController


def marlin(port, **options) -> MarlinStage:
    options.setdefault("reply_timeout_s", 0.5)
    return MarlinStage(port, **options)


def test_moves_wait_with_m400_and_read_m114():
    with SimulatedController(dialect="marlin", speed_mm_s=100.0) as controller:
        with marlin(controller.port) as stage:
            assert "Marlin" in stage.firmware
            assert stage.move_to(2.0, 3.0, 0.5) == (2.0, 3.0, 0.5)
            assert controller.position == (2.0, 3.0, 0.5)
            assert controller.lines[-3:] == ["G0 X2.0000 Y3.0000 Z0.5000 F3000", "M400", "M114"]
        assert "G21" in controller.lines  # unknown without INCH_MODE_SUPPORT: accepted, mm is the only unit


def test_busy_keepalive_extends_the_wait_for_a_long_move():
    with SimulatedController(dialect="marlin", speed_mm_s=1.0, time_scale=10.0) as controller:
        # 6 mm at 1 mm/s: 6 s of controller time (0.6 s here); echo:busy every 2 s (0.2 s here)
        with marlin(controller.port, feed_mm_min=60.0, move_timeout_s=0.35) as stage:
            assert stage.move_to(x=6.0) == (6.0, 0.0, 0.0)


def test_a_refusal_reads_its_ok_so_the_next_command_is_answered_right():
    with SimulatedController(dialect="marlin") as controller, marlin(controller.port) as stage:
        with pytest.raises(StageError, match=r"refused 'M42 P99': unknown command"):
            stage.command("M42 P99")
        assert stage.move_to(x=1.0) == (1.0, 0.0, 0.0)
        assert stage.position() == (1.0, 0.0, 0.0)


def test_clamped_target_is_an_error():
    """Marlin's software endstops clamp a target without a word; the position read after M400 tells."""
    with SimulatedController(dialect="marlin", travel_mm=(10.0, 10.0, 5.0)) as controller, marlin(controller.port) as stage:
        with pytest.raises(StageError, match=r"reports X 10.0000 mm after 'G0 X12.0000 F3000'"):
            stage.move_to(x=12.0)


def test_halt_is_an_alarm_and_the_board_answers_nothing_after():
    with SimulatedController(dialect="marlin", faults=[Fault("alarm", at_move=1, code=112)]) as controller:
        with marlin(controller.port) as stage:
            with pytest.raises(StageAlarm, match="halted.*reset button"):
                stage.move_to(x=5.0)
            with pytest.raises(StageError, match="no reply"):
                stage.command("M114")


def test_stopped_board_needs_m999():
    with SimulatedController(dialect="marlin", faults=[Fault("alarm", at_move=1, code=1)]) as controller:
        with marlin(controller.port) as stage:
            with pytest.raises(StageAlarm, match="Printer stopped due to errors.*--unlock sends M999"):
                stage.move_to(x=5.0)
        with marlin(controller.port) as stage:
            with pytest.raises(StageAlarm, match="stopped"):
                stage.move_to(x=1.0)  # moves are skipped with an echo until M999
        with marlin(controller.port, unlock=True) as stage:
            assert stage.move_to(x=1.0) == (1.0, 0.0, 0.0)
        assert "M999 S1" in controller.lines


def test_garbled_position_is_an_error():
    with SimulatedController(dialect="marlin", faults=[Fault("garble", at_move=1)]) as controller:
        with marlin(controller.port) as stage:
            with pytest.raises(StageError, match="M114 gave no position"):
                stage.move_to(x=1.0)


def test_software_endstops_from_m211():
    with SimulatedController(dialect="marlin", travel_mm=(200.0, 150.0, 20.0)) as controller, marlin(controller.port) as stage:
        assert stage.travel_limits() == ((0.0, 200.0), (0.0, 150.0), (0.0, 20.0))
        stage.command("M211 S0")
        assert stage.travel_limits() is None
