"""``sedarchive acquire ARCHIVE --core C --depth 120-122 (--port DEV | --simulate) [--camera N|sim]``.

Runs a scan plan on a real microscope (a GRBL or Marlin stage on a serial port, an OpenCV camera)
or on the simulated one, into a new sample; run again with the same plan to resume an interrupted
scan. ``--port`` and ``--camera`` are independent: a real stage can be tried with the simulated camera.
"""
from __future__ import annotations

import argparse
import sys

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "acquire",
        help="scan a plate on a serial stage and camera, or on the simulated microscope, into a new sample",
        description="Scan a plate (or several, with a prompt to reload between them) into a new sample: a grid "
                    "of stage positions, each photographed at several focal distances. Run the same command "
                    "again to resume an interrupted scan at the first missing position.",
    )
    _options.add_archive(p)
    p.add_argument("--core", required=True, help="core name, e.g. AI-3352")
    p.add_argument("--depth", required=True, metavar="TOP-BOTTOM", help="depth interval in cm, e.g. 120-122")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEV",
                       help="serial device or pyserial URL of the stage controller (/dev/ttyUSB0, COM3, socket://host:23)")
    where.add_argument("--simulate", action="store_true",
                       help="use the simulated stage controller (GRBL on a pseudo-terminal)")
    p.add_argument("--camera", metavar="N|URL|sim",
                   help="camera index, device, stream URL or image pattern, or 'sim' (default: sim with --simulate, else 0)")
    dev = p.add_argument_group("stage controller")
    dev.add_argument("--dialect", choices=("grbl", "marlin"), default="grbl", help="controller firmware (default grbl)")
    dev.add_argument("--baud", type=int, default=115200, help="serial speed (default 115200)")
    dev.add_argument("--unlock", action="store_true",
                     help="clear an alarm lock at connect with $X (GRBL), or a stopped board with M999 S1 (Marlin)")
    dev.add_argument("--home", action="store_true", help="home the stage at connect ($H / G28)")
    dev.add_argument("--feed", type=float, metavar="MM_PER_MIN", help="feed rate of moves (default: rapid moves)")
    dev.add_argument("--discard", type=int, default=2, help="camera frames dropped after each move (default 2)")
    plan = p.add_argument_group("scan plan (options override --plan)")
    plan.add_argument("--plan", metavar="FILE", help="plan file (YAML), see the README")
    plan.add_argument("--area", action="append", metavar="X0,Y0,X1,Y1",
                      help="plate area in stage mm (repeat for plates with different areas)")
    plan.add_argument("--plates", type=int, metavar="N", help="number of plates of the same area, loaded in turn")
    plan.add_argument("--overlap", metavar="F|auto",
                      help="shared fraction of neighbouring frames (default 0), or auto: just wider than the "
                           "largest grain, so that every grain is seen whole in some frame")
    plan.add_argument("--largest-grain", type=float, default=None, metavar="MM",
                      help="largest grain expected, in mm (default 0.5): a smaller overlap is warned about")
    plan.add_argument("--focal-offsets", metavar="UM,UM,...", help="focal offsets in µm (default -50,-30,-10,10,30,50)")
    plan.add_argument("--z", type=float, metavar="MM", help="stage height of the middle focal plane")
    plan.add_argument("--frame", metavar="WxH", help="frame size in pixels (default 1280x1024)")
    plan.add_argument("--pixel-size", type=float, metavar="UM", help="pixel size on the plate in µm (default 1.5)")
    plan.add_argument("--settle", type=float, metavar="S", help="seconds to wait after each move")
    plan.add_argument("--travel", metavar="X,Y,Z", help="stage travel in mm, to check the plan against")
    p.add_argument("--list", action="store_true", help="print and check the plan, move nothing")
    p.add_argument("--yes", action="store_true", help="do not wait for the operator between plates")
    sim = p.add_argument_group("simulated microscope")
    sim.add_argument("--seed", type=int, default=0, help="seed of the virtual plates (default 0)")
    sim.add_argument("--grains-per-mm2", type=float, default=2.0, help="grain density of the virtual plates")
    sim.add_argument("--sim-fault", action="append", metavar="KIND@MOVE", default=[],
                     help="inject a controller fault: alarm@N, error:CODE@N, silence@N, drop@N, garble@N, "
                          "lost_query@N (N = move count)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def build_plan(args: argparse.Namespace):
    """The scan plan from ``--plan`` and the plan options."""
    from dataclasses import replace

    from acquisition.errors import PlanError
    from acquisition.plan import LARGEST_GRAIN_MM, PlateArea, ScanPlan, overlap_for_grain, overlap_warning, parse_offsets

    plan = ScanPlan.load(args.plan) if args.plan else ScanPlan()
    changes: dict = {}
    if args.area:
        changes["plates"] = tuple(PlateArea.parse(a) for a in args.area)
    if args.plates:
        changes["plates"] = (changes.get("plates") or plan.plates)[:1] * args.plates
    largest = LARGEST_GRAIN_MM if args.largest_grain is None else args.largest_grain
    auto = str(args.overlap).strip().lower() == "auto"
    if args.overlap is not None and not auto:
        try:
            changes["overlap"] = float(args.overlap)
        except ValueError:
            raise PlanError(f"--overlap {args.overlap!r} is not a fraction (e.g. 0.3) or auto") from None
    if args.focal_offsets:
        changes["focal_offsets_um"] = parse_offsets(args.focal_offsets)
    if args.z is not None:
        changes["z_mm"] = args.z
    if args.frame:
        try:
            w, h = (int(v) for v in args.frame.lower().split("x"))
        except ValueError:
            raise PlanError(f"--frame {args.frame!r} is not WIDTHxHEIGHT in pixels, e.g. 1280x1024") from None
        changes.update(width=w, height=h)
    if args.pixel_size is not None:
        changes["pixel_size_um"] = args.pixel_size
    if args.settle is not None:
        changes["settle_s"] = args.settle
    if args.travel:
        try:
            changes["travel_mm"] = tuple(float(v) for v in args.travel.split(","))
        except ValueError:
            raise PlanError(f"--travel {args.travel!r} is not X,Y,Z in mm") from None
    plan = replace(plan, **changes) if changes else plan
    if auto:
        plan = replace(plan, overlap=overlap_for_grain(plan, largest))
    warnings = plan.check()
    if overlap_warning(plan, largest):
        warnings.append(overlap_warning(plan, largest))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return plan


def run(args: argparse.Namespace) -> int:
    import contextlib

    from catalog import Archive, SampleKey
    from acquisition.errors import AcquisitionError
    from acquisition.runner import ScanRunner
    from acquisition.sim.microscope import TruthSink

    key = SampleKey.parse(args.core, args.depth)
    plan = build_plan(args)
    if args.list:
        print(plan.describe())
        return 0
    faults = _faults(args.sim_fault) if args.sim_fault else ()
    if faults and not args.simulate:
        raise AcquisitionError("--sim-fault needs --simulate")
    archive = Archive.create(args.archive)
    camera_source = args.camera or ("sim" if args.simulate else "0")
    with contextlib.ExitStack() as stack:
        stage, camera, plates, devices = _devices(args, plan, camera_source, faults, stack)
        simulated_operator = args.simulate and plates is not None

        def on_plate(plate: int, n_plates: int) -> None:
            if plates is not None:
                camera.plate = plates[plate]
            if args.yes or simulated_operator:
                if not args.quiet:
                    print(f"plate {plate + 1} of {n_plates}", file=sys.stderr)
                return
            input(f"Load plate {plate + 1} of {n_plates}, then press Enter ")

        def on_progress(progress) -> None:
            if not args.quiet:
                print(progress.line(), file=sys.stderr, flush=True)

        runner = ScanRunner(stage, camera, plan, on_progress=on_progress, on_plate=on_plate)
        sinks = [TruthSink(plan, plates)] if plates is not None else []
        report = runner.run(archive, key, devices=devices, sinks=sinks)
    state = "acquired" if report.complete else "incomplete"
    print(f"{key.name}: {report.taken} position{'' if report.taken == 1 else 's'} taken now, {report.already_done + report.taken}/{report.total} "
          f"in {report.path} ({state}; {report.elapsed_s:.1f} s)")
    return 0


def _faults(texts):
    from acquisition.errors import AcquisitionError
    from acquisition.sim.controller import Fault

    try:
        return tuple(Fault.parse(t) for t in texts)
    except ValueError as err:
        raise AcquisitionError(f"--sim-fault: {err}") from None


def _devices(args, plan, camera_source, faults, stack):
    """Connected stage and camera, the virtual plates (when the camera is simulated), and a description."""
    from acquisition.camera import OpenCVCamera
    from acquisition.grbl import GrblStage
    from acquisition.marlin import MarlinStage
    from acquisition.sim.camera import SimulatedCamera
    from acquisition.sim.microscope import SimulatedMicroscope, plates_for

    options = {"feed_mm_min": args.feed} if args.feed else {}
    if args.simulate:
        microscope = stack.enter_context(SimulatedMicroscope(
            plan, seed=args.seed, dialect=args.dialect, faults=faults, grains_per_mm2=args.grains_per_mm2,
            speed_mm_s=200.0, home=args.home, unlock=args.unlock, **options))
        stage, sim_camera, plates = microscope.stage, microscope.camera, microscope.plates
        stage_name = f"simulated {args.dialect} controller"
    else:
        driver = GrblStage if args.dialect == "grbl" else MarlinStage
        stage = driver(args.port, baudrate=args.baud, unlock=args.unlock, home=args.home, **options)
        stack.callback(stage.close)
        stage.connect()
        stage_name = stage.name
        plates = plates_for(plan, seed=args.seed, grains_per_mm2=args.grains_per_mm2) if camera_source == "sim" else None
        # a real stage photographed by the simulated camera: it renders the position the stage reports
        sim_camera = SimulatedCamera(plates[0], stage.position, height=plan.height, width=plan.width,
                                     pixel_size_um=plan.pixel_size_um, z_reference_mm=plan.z_mm) if plates else None
    if camera_source == "sim":
        camera = sim_camera
    else:
        plates = None
        camera = OpenCVCamera(camera_source, width=plan.width, height=plan.height, discard=args.discard)
        stack.callback(camera.close)
        camera.connect()
    devices = {"stage": stage_name, "camera": camera.settings}
    if hasattr(stage, "describe"):  # firmware, and what the driver converts (GRBL $13=1)
        devices["controller"] = stage.describe()
    return stage, camera, plates, devices
