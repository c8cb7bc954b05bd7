"""Simulated scans through the whole acquisition path: positions per second, and where the time goes.

Each scan runs the real GRBL driver, pyserial, a pseudo-terminal, the simulated controller (moves at
500 mm/s) and the simulated camera, and writes every position into a sample store through
``catalog``. The runner's time splits into waiting for the stage (moves and status polling), for
the camera (here: rendering the frame), and everything else (waiting for the background writer,
progress, bookkeeping); the last share is what the runner itself costs. Writes (compression and
Zarr I/O) run in a writer thread while the stage moves on, so they only count where they make the
runner wait.

    python bench/acquire.py            # 16 small positions + 6 full-size (1280x1024) positions
    python bench/acquire.py --quick    # 4 + 2
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time

from catalog import Archive, SampleKey
from acquisition.plan import PlateArea, ScanPlan
from acquisition.runner import ScanRunner
from acquisition.sim.microscope import SimulatedMicroscope


def one_scan(columns: int, rows: int, width: int, height: int, pixel_size_um: float) -> dict:
    fw, fh = width * pixel_size_um / 1000, height * pixel_size_um / 1000
    plan = ScanPlan(plates=(PlateArea(0.0, 0.0, columns * fw, rows * fh),), width=width, height=height,
                    pixel_size_um=pixel_size_um)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive.create(tmp)
        with SimulatedMicroscope(plan, seed=0) as microscope:
            runner = ScanRunner(microscope.stage, microscope.camera, plan)
            t0 = time.perf_counter()
            report = runner.run(archive, SampleKey("BENCH", 1, 2))
            wall = time.perf_counter() - t0
    n = report.taken
    return {
        "frame": f"{width}x{height}x{plan.n_layers}",
        "positions": n,
        "pos_per_s": n / wall,
        "stage_ms": 1000 * report.stage_s / n,
        "camera_ms": 1000 * report.camera_s / n,
        "write_ms": 1000 * report.write_s / n,
        "write_work_ms": 1000 * report.write_work_s / n,
        "other_ms": 1000 * (report.elapsed_s - report.stage_s - report.camera_s - report.write_s) / n,
        "outside_share": report.overhead_share,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer positions")
    args = parser.parse_args()
    small = (2, 2) if args.quick else (4, 4)
    large = (2, 1) if args.quick else (3, 2)
    rows = [one_scan(*small, 320, 256, 8.0), one_scan(*large, 1280, 1024, 1.5)]
    print(f"simulated scan, GRBL over a pty, 6 focal layers ({platform.node()}, {platform.processor() or platform.machine()})")
    header = ("frame", "positions", "pos/s", "stage ms", "camera ms", "write wait ms", "other ms", "outside s+c",
              "write work ms")
    print("  ".join(f"{h:>12}" for h in header))
    for r in rows:
        cells = (r["frame"], r["positions"], f"{r['pos_per_s']:.2f}", f"{r['stage_ms']:.1f}", f"{r['camera_ms']:.1f}",
                 f"{r['write_ms']:.1f}", f"{r['other_ms']:.1f}", f"{r['outside_share']:.0%}",
                 f"{r['write_work_ms']:.1f}")
        print("  ".join(f"{c:>12}" for c in cells))
    print("per position: stage = moves + status polling; camera = simulated rendering; write wait = time the runner\n"
          "waited for the background writer; outside s+c = share of runner time not spent waiting for stage or camera;\n"
          "write work = time the writer thread spent (overlapping the next position's moves and snaps)")


if __name__ == "__main__":
    main()
