"""The GRBL driver against the simulated GRBL 1.1h controller, through pyserial and a pseudo-terminal."""
from __future__ import annotations

import os
import time
import tty

import pytest
import serial

from acquisition.errors import StageAlarm, StageDisconnected, StageError, StageTimeout
from acquisition.grbl import GrblDialect, GrblStage, parse_status
from acquisition.serial_link import SerialLink
from acquisition.sim.controller import Fault, SimulatedController


def grbl(port, **options) -> GrblStage:
    options.setdefault("reply_timeout_s", 0.5)
    options.setdefault("poll_interval_s", 0.1)
    return GrblStage(port, **options)


def test_connect_reads_settings_and_sets_absolute_mm():
    with SimulatedController() as controller, grbl(controller.port) as stage:
        assert stage.banner.startswith("Grbl 1.1")
        assert controller.lines[:3] == ["$$", "G90", "G21"]
        assert stage.settings[100] == 250.0 and not stage.report_inches
        assert "$X" not in controller.lines
        assert stage.move_to(1.5, 2.25, 0.5) == (1.5, 2.252, 0.5)  # whole steps at 250 steps/mm
        assert controller.position == (1.5, 2.252, 0.5)
        stage.move_to(z=0.25)
        assert stage.position() == (1.5, 2.252, 0.252)


def test_moves_are_waited_for_with_g4_not_by_fast_polling():
    with SimulatedController(speed_mm_s=20.0) as controller, grbl(controller.port, poll_interval_s=0.1) as stage:
        before = controller.status_reports
        t0 = time.monotonic()
        stage.move_to(x=4.0)  # 0.2 s of motion
        waited = time.monotonic() - t0
        assert controller.position == (4.0, 0.0, 0.0)
        assert controller.lines[-2:] == ["G0 X4.0000", "G4 P0.01"]
        # '?' at most every poll interval while waiting, and one for the position
        assert controller.status_reports - before <= waited / 0.1 + 3


def test_inch_reports_are_converted():
    """Issue 15, 1: with $13=1 GRBL reports inches; G21 governs the input only."""
    with SimulatedController(settings={13: 1}, steps_per_mm=1000.0) as controller, grbl(controller.port) as stage:
        assert stage.report_inches
        reached = stage.move_to(25.4, 12.7, 1.03)
        assert reached == pytest.approx((25.4, 12.7, 1.03), abs=0.002)
        assert controller.position == (25.4, 12.7, 1.03)


def test_early_idle_does_not_end_a_move():
    """Issue 15, 2: '?' answered Idle at the old Z before the queued block starts; G4 P0.01 waits it out."""
    with SimulatedController(start_delay_s=0.05, steps_per_mm=1000.0) as controller, grbl(controller.port) as stage:
        for z in (1.01, 1.03, 1.05, 0.95):
            assert stage.move_to(z=z)[2] == pytest.approx(z, abs=1e-9)
            assert controller.position[2] == pytest.approx(z, abs=1e-9)


def test_a_move_that_ends_elsewhere_is_an_error():
    with SimulatedController(start_delay_s=0.05) as controller, grbl(controller.port) as stage:
        stage.grbl.wait_for_moves = lambda stage, during: None  # a driver that trusts the first report
        with pytest.raises(StageError, match=r"reports X 0.0000 mm after 'G0 X5.0000' \(off by -5.0000 mm"):
            stage.move_to(x=5.0)


def test_garbled_status_is_a_stage_error():
    """Issue 15, 3."""
    with SimulatedController(faults=[Fault("garble", at_move=1)]) as controller, grbl(controller.port) as stage:
        with pytest.raises(StageError, match=r"garbled status report '<Idle\|MPos:1.000,0.000,0.000\|FS:0,0.*>1'"):
            stage.move_to(x=1.0)


def test_a_lost_status_request_is_sent_again():
    """Issue 15, 4: GRBL never saw the '?': it is re-sent after status_retry_s."""
    with SimulatedController(faults=[Fault("lost_query", at_move=1)]) as controller:
        with grbl(controller.port, status_retry_s=0.1, poll_interval_s=5.0) as stage:
            assert stage.move_to(x=1.0) == (1.0, 0.0, 0.0)


def test_reset_right_after_an_alarm_is_repeated_until_the_banner():
    """Issue 15, 5: a 0x18 within 500 ms of ALARM:2 is lost; connect repeats it."""
    with SimulatedController(soft_limits=True, travel_mm=(10.0, 10.0, 5.0)) as controller:
        stage = grbl(controller.port, reset_retry_s=0.2)
        stage.connect()
        with pytest.raises(StageAlarm, match=r"ALARM:2 \(soft limit alarm.*during 'G0 X5.0000'") as info:
            stage.move_to(x=5.0)
        assert info.value.code == 2
        stage.close()
        with grbl(controller.port, reset_retry_s=0.2, unlock=True) as again:  # at once: inside the 500 ms
            assert again.move_to(x=-1.0) == (-1.0, 0.0, 0.0)
        assert controller.lines.count("$X") == 1


def test_reset_then_status_is_not_an_unexpected_reset():
    """Issue 15, 5: the banner of the driver's own reset is expected."""
    with SimulatedController(speed_mm_s=10.0) as controller, grbl(controller.port) as stage:
        stage.command("G0 X20")  # 2 s
        time.sleep(0.1)
        stage.reset()  # in motion: ALARM:3, then the banner
        assert "ALARM:3" in stage.messages
        state, position = stage.status()
        assert state == "Alarm" and 0.0 < position[0] < 20.0


def test_read_line_reads_waiting_bytes_before_its_deadline():
    """Issue 15, 5: with a line waiting, read_line(0.0) returns it."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        link = SerialLink(os.ttyname(slave))
        link.open()
        os.write(master, b"<Idle|MPos:0.000,0.000,0.000|FS:0,0>\r\n")
        time.sleep(0.05)
        assert link.read_line(0.0) == "<Idle|MPos:0.000,0.000,0.000|FS:0,0>"
        link.close()
    finally:
        os.close(master)
        os.close(slave)


def test_alarm_in_the_middle_of_a_move_names_the_move_and_locks():
    """Issue 15, 6: the alarm names the move; GRBL answers nothing after ALARM:1 until a reset."""
    with SimulatedController(speed_mm_s=10.0, faults=[Fault("alarm", at_move=2, code=1)]) as controller:
        with grbl(controller.port) as stage:
            stage.move_to(x=1.0)
            with pytest.raises(StageAlarm, match=r"ALARM:1 \(hard limit triggered.*during 'G0 X5.0000'"):
                stage.move_to(x=5.0)
            x = controller.position[0]
            assert 1.0 < x < 5.0  # it stopped on the way
            with pytest.raises(StageAlarm, match="answers nothing until a reset"):
                stage.status()
            stage.reset()
            assert stage.status() == ("Alarm", (pytest.approx(x, abs=0.004), 0.0, 0.0))


def test_alarms_before_the_banner_are_kept():
    """Issue 15, 6: an ALARM:N line that comes before the banner at connect is told in the lock message."""
    with SimulatedController(speed_mm_s=10.0) as controller:
        with grbl(controller.port) as left_moving:
            left_moving.command("G0 X100")  # another program left the stage moving
        with pytest.raises(StageAlarm, match=r"locked in alarm state \(ALARM:3 \(reset while in motion.*before the reset.*--unlock") as info:
            grbl(controller.port).connect()  # its reset stops the move: ALARM:3, then the banner
        assert info.value.code == 3


def test_homing_timeout_comes_from_the_settings():
    dialect = GrblDialect()
    dialect.settings = {24: 25.0, 25: 500.0, 27: 1.0, 130: 200.0, 131: 200.0, 132: 200.0}
    # search 1.5 x 200 mm at 500 mm/min = 36 s, locate 2 x 5 x 1 mm at 25 mm/min = 24 s; twice, for Z then XY
    assert dialect.homing_timeout_s() == pytest.approx(2 * 2 * (36 + 24) + 10)
    dialect.settings = {}
    assert dialect.homing_timeout_s() == 120.0


def test_locked_controller_is_unlocked_only_when_told():
    with SimulatedController(start_in_alarm=True) as controller:
        with pytest.raises(StageAlarm, match=r"locked in alarm state.*--unlock"):
            grbl(controller.port).connect()
        assert "$X" not in controller.lines
        with grbl(controller.port, unlock=True) as stage:
            stage.move_to(1.0, 0.0, 0.0)
        assert "$X" in controller.lines


def test_home_runs_the_homing_cycle():
    with SimulatedController(start_in_alarm=True, settings={24: 600.0, 25: 3000.0}) as controller:
        with grbl(controller.port, home=True) as stage:
            assert stage.position() == (-1.0, -1.0, -1.0)  # homing leaves minus the pull-off ($27)
        assert "$H" in controller.lines and "$X" not in controller.lines
    with SimulatedController(homing=False) as controller:
        with pytest.raises(StageError, match=r"error:5 \(homing cycle is not enabled"):
            grbl(controller.port, home=True).connect()


def test_travel_limits_follow_20_130_and_the_work_offset():
    with SimulatedController(soft_limits=True, travel_mm=(100.0, 80.0, 20.0), work_offset=(-90.0, -70.0, -15.0)) as controller:
        with grbl(controller.port) as stage:
            assert stage.travel_limits() == ((-10.0, 90.0), (-10.0, 70.0), (-5.0, 15.0))
    with SimulatedController() as controller, grbl(controller.port) as stage:
        assert stage.travel_limits() is None  # $20=0: nothing is enforced


def test_work_position_from_mpos_and_wco_or_wpos():
    with SimulatedController(work_offset=(2.0, 3.0, 0.0)) as controller, grbl(controller.port) as stage:
        assert stage.move_to(1.0, 1.0, 0.0) == (1.0, 1.0, 0.0)
        assert controller.position == (3.0, 4.0, 0.0)
    with SimulatedController(work_offset=(2.0, 3.0, 0.0), settings={10: 0}) as controller, grbl(controller.port) as stage:
        assert stage.move_to(1.0, 1.0, 0.0) == (1.0, 1.0, 0.0)


def test_error_replies_carry_their_meaning():
    with SimulatedController() as controller, grbl(controller.port) as stage:
        with pytest.raises(StageError, match=r"refused 'G5': error:20 \(unsupported or invalid g-code"):
            stage.command("G5")
        with pytest.raises(StageError, match=r"error:22 \(feed rate has not yet been set"):
            stage.command("G1 X1")
        with pytest.raises(StageError, match=r"error:2 \(numeric value format is not valid"):
            stage.command("$Q")
        stage.move_to(x=1.0)  # still usable afterwards


def test_soft_limit_alarm_needs_a_reset_then_an_unlock():
    with SimulatedController(travel_mm=(10.0, 10.0, 5.0), soft_limits=True, work_offset=(-10.0, -10.0, -5.0)) as controller:
        with grbl(controller.port, reset_retry_s=0.2) as stage:
            with pytest.raises(StageAlarm, match=r"ALARM:2 \(soft limit alarm") as info:
                stage.move_to(x=20.0)
            assert info.value.code == 2
            with pytest.raises(StageTimeout, match="no reply to 'G0 X1'"):
                stage.command("G0 X1")  # GRBL answers nothing until a reset
            stage.reset()
            with pytest.raises(StageError, match="error:9"):
                stage.command("G0 X1")
            stage.unlock()
            assert stage.move_to(x=1.0) == (1.0, 10.0, 5.0)  # machine 0 is work 10 with this offset


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
            grbl(os.ttyname(slave), banner_timeout_s=0.3, reset_retry_s=0.1).connect()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_a_clear_error(tmp_path):
    with pytest.raises(StageDisconnected, match="cannot open serial port .*ttyNOPE"):
        grbl(str(tmp_path / "ttyNOPE")).connect()


def test_an_open_serial_object_is_accepted():
    with SimulatedController() as controller:
        port = serial.Serial(controller.port, 115200, timeout=0.02)
        with grbl(port) as stage:
            stage.move_to(1.0, 1.0)
            assert stage.position()[:2] == (1.0, 1.0)


def test_realtime_feed_hold_resume_reset_and_jog_cancel():
    with SimulatedController(speed_mm_s=5.0, accel_mm_s2=10.0) as controller, grbl(controller.port) as stage:
        stage.command("G0 X5")  # 1 s move, not waited for
        time.sleep(0.1)
        stage.stop()  # "!" feed hold: decelerates (0.5 s at 10 mm/s²), then holds
        states = []
        while not states or states[-1] != "Hold:0":
            states.append(stage.status()[0])
        assert states[0] == "Hold:1"
        first = stage.status()[1]
        time.sleep(0.05)
        assert stage.status()[1] == first and 0 < first[0] < 5
        stage.resume_motion()  # '~'
        assert stage.wait_idle() == (5.0, 0.0, 0.0)
        stage.command("$J=G91 G21 X5 F300")
        time.sleep(0.1)
        stage.jog_cancel()  # 0x85
        assert stage.status()[0] == "Jog"  # still braking
        assert stage.wait_idle()[0] < 9.0
        stage.command("G0 X20")  # 3.6 s
        time.sleep(0.05)
        stage.reset()  # 0x18 during motion: ALARM:3, then the banner again
        assert controller.alarm == 3
        assert stage.status()[0] == "Alarm"


def test_status_reports_with_work_offsets():
    state, fields = parse_status("<Run|MPos:5.000,1.000,0.000|FS:500,0|WCO:1.000,0.000,0.000>")
    assert state == "Run" and fields["WCO"] == (1.0, 0.0, 0.0)
    assert parse_status("<Alarm|MPos:0.000,0.000,0.000|Pn:XZ|Ov:100,100,100>")[0] == "Alarm"
    for garbled in ("ok", "<Run|MPos:0,0,0|FS:0,0>1", "<Idle|MPos:1.0,2.0>", "Idle|MPos:0.000,0.000,0.000>"):
        with pytest.raises(ValueError):
            parse_status(garbled)
