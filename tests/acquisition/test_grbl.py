"""The GRBL and Marlin drivers against the simulated controller, through pyserial and a pseudo-terminal."""
from __future__ import annotations

import os
import time
import tty

import pytest
import serial

from acquisition.errors import StageAlarm, StageDisconnected, StageError, StageTimeout
from acquisition.grbl import GrblStage, parse_status
from acquisition.marlin import MarlinStage
from acquisition.sim.controller import Fault, SimulatedController


def grbl(port, **options) -> GrblStage:
    options.setdefault("poll_interval_s", 0.002)
    options.setdefault("reply_timeout_s", 0.5)
    return GrblStage(port, **options)


def test_connect_waits_for_the_banner_and_sets_absolute_mm():
    with SimulatedController() as controller, grbl(controller.port) as stage:
        assert stage.banner.startswith("Grbl 1.1")
        assert controller.lines[:2] == ["G90", "G21"]
        assert "$X" not in controller.lines
        stage.move_to(1.5, 2.25, 0.5)
        assert stage.position() == (1.5, 2.25, 0.5)
        assert controller.position == (1.5, 2.25, 0.5)
        stage.move_to(z=0.25)
        assert stage.position() == (1.5, 2.25, 0.25)
        assert controller.status_reports >= 4


def test_moves_take_time_and_status_is_polled_until_idle():
    with SimulatedController(speed_mm_s=40.0) as controller, grbl(controller.port) as stage:
        before = controller.status_reports
        stage.move_to(x=4.0)  # 0.1 s of motion
        assert controller.position == (4.0, 0.0, 0.0)
        assert controller.status_reports - before >= 3  # Run, Run, ..., Idle


def test_an_open_serial_object_is_accepted():
    with SimulatedController() as controller:
        port = serial.Serial(controller.port, 115200, timeout=0.02)
        with grbl(port) as stage:
            stage.move_to(1.0, 1.0)
            assert stage.position()[:2] == (1.0, 1.0)


def test_locked_controller_is_unlocked_only_when_told():
    with SimulatedController(start_in_alarm=True) as controller:
        with pytest.raises(StageAlarm, match=r"locked in alarm state.*--unlock"):
            grbl(controller.port).connect()
        assert "$X" not in controller.lines
        with grbl(controller.port, unlock=True) as stage:
            stage.move_to(1.0, 0.0, 0.0)
        assert "$X" in controller.lines


def test_home_runs_the_homing_cycle():
    with SimulatedController(start_in_alarm=True) as controller:
        with grbl(controller.port, home=True) as stage:
            assert stage.position() == (0.0, 0.0, 0.0)
        assert "$H" in controller.lines and "$X" not in controller.lines
    with SimulatedController(homing=False) as controller:
        with pytest.raises(StageError, match=r"error:5 \(homing cycle is not enabled"):
            grbl(controller.port, home=True).connect()


def test_error_replies_carry_their_meaning():
    with SimulatedController() as controller, grbl(controller.port) as stage:
        with pytest.raises(StageError, match=r"refused 'G5': error:20 \(unsupported or invalid g-code"):
            stage.command("G5")
        with pytest.raises(StageError, match=r"error:22 \(feed rate has not yet been set"):
            stage.command("G1 X1")
        with pytest.raises(StageError, match=r"error:3 \(Grbl '\$' system command was not recognized"):
            stage.command("$Q")
        stage.move_to(x=1.0)  # still usable afterwards


def test_soft_limit_alarm_stops_and_locks_the_controller():
    with SimulatedController(travel_mm=(10.0, 10.0, 5.0)) as controller, grbl(controller.port) as stage:
        with pytest.raises(StageAlarm, match=r"ALARM:2 \(soft limit alarm") as info:
            stage.move_to(x=20.0)
        assert info.value.code == 2
        with pytest.raises(StageError, match="error:9"):
            stage.command("G0 X1")
        stage.unlock()
        stage.move_to(x=1.0)


def test_alarm_in_the_middle_of_a_move():
    with SimulatedController(speed_mm_s=10.0, faults=[Fault("alarm", at_move=2, code=1)]) as controller:
        with grbl(controller.port) as stage:
            stage.move_to(x=1.0)
            with pytest.raises(StageAlarm, match=r"ALARM:1 \(hard limit triggered"):
                stage.move_to(x=5.0)
            x = controller.position[0]
            assert 1.0 < x < 5.0  # it stopped on the way
            state, _ = stage.status()
            assert state == "Alarm"


def test_missing_reply_times_out():
    with SimulatedController(faults=[Fault("silence", at_move=1)]) as controller, grbl(controller.port) as stage:
        with pytest.raises(StageTimeout, match=r"no reply to 'G0 X1.0000' within 0.5 s"):
            stage.move_to(x=1.0)


def test_dropped_connection_is_reported():
    with SimulatedController(faults=[Fault("drop", at_move=2)]) as controller:
        stage = grbl(controller.port)
        stage.connect()
        stage.move_to(x=1.0)
        with pytest.raises(StageDisconnected, match="disconnected"):
            stage.move_to(x=2.0)
        stage.stop()  # must not raise on a dead link
        stage.close()


def test_no_banner_means_no_grbl():
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with pytest.raises(StageTimeout, match="no GRBL banner within 0.3 s"):
            grbl(os.ttyname(slave), banner_timeout_s=0.3).connect()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_a_clear_error(tmp_path):
    with pytest.raises(StageDisconnected, match="cannot open serial port .*ttyNOPE"):
        grbl(str(tmp_path / "ttyNOPE")).connect()


def test_realtime_feed_hold_resume_reset_and_jog_cancel():
    with SimulatedController(speed_mm_s=5.0) as controller, grbl(controller.port) as stage:
        stage.command("G0 X5")  # 1 s move, not waited for
        time.sleep(0.05)
        stage.stop()  # '!' feed hold
        state, first = stage.status()
        time.sleep(0.05)
        assert state == "Hold:0"
        assert stage.status()[1] == first and 0 < first[0] < 5
        stage.resume_motion()  # '~'
        assert stage.wait_idle() == (5.0, 0.0, 0.0)
        stage.command("$J=G91 G21 X5 F600")
        time.sleep(0.05)
        stage.jog_cancel()  # 0x85
        assert stage.wait_idle()[0] < 9.0
        stage.command("G0 X0")
        time.sleep(0.05)
        stage.reset()  # 0x18 during motion: ALARM:3, then the banner again
        with pytest.raises(StageAlarm, match=r"ALARM:3 \(reset while in motion"):
            stage.status()
        assert controller.alarm == 3


def test_status_reports_with_work_offsets():
    state, fields = parse_status("<Run|MPos:5.000,1.000,0.000|FS:500,0|WCO:1.000,0.000,0.000>")
    assert state == "Run" and fields["WCO"] == (1.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        parse_status("ok")


def test_marlin_dialect():
    with SimulatedController(dialect="marlin", speed_mm_s=100.0) as controller:
        with MarlinStage(controller.port, reply_timeout_s=0.5) as stage:
            assert "Marlin" in stage.firmware
            stage.move_to(2.0, 3.0, 0.5)
            assert stage.position() == (2.0, 3.0, 0.5)
            assert controller.position == (2.0, 3.0, 0.5)
            assert "M400" in controller.lines
            with pytest.raises(StageError, match="does not know 'M999'"):
                stage.command("M999")


def test_marlin_halt_is_an_alarm():
    with SimulatedController(dialect="marlin", faults=[Fault("alarm", at_move=1, code=112)]) as controller:
        with MarlinStage(controller.port, reply_timeout_s=0.5) as stage:
            with pytest.raises(StageAlarm, match="halted"):
                stage.move_to(x=5.0)
