"""``sedarchive demo [ARCHIVE]``: a small simulated archive, processed end to end, ending with the report.

The simulated microscope scans ``--cores`` cores at ``--depths`` depth intervals each; the grain
mix changes with depth (more broken foraminifera and dark grains lower down), so the proxies of the
report have a trend to show. Then ``sedarchive run`` processes everything on the embedded local
cluster (or ``--scheduler`` / ``--cluster``). Running the demo again resumes it: samples already
simulated are kept, and every stage skips finished work.
"""
from __future__ import annotations

import argparse
import sys

from sedarchive.commands import _options

DEFAULT_ARCHIVE = "./demo-archive"
#: Stage options of the demo where they differ from the paper's defaults (a small CPU run; the fast
#: segmentation finds the same grains as slic on the simulator's plates, bench/harder.py, at a
#: fraction of its cost).
DEMO_STAGE_DEFAULTS = {"preset": "cpu", "epochs": 4, "k": 12, "method": "fast"}
CORES = ("DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4")


def add_parser(sub) -> argparse.ArgumentParser:
    from sedarchive.commands.run import STAGE_COMMANDS

    p = sub.add_parser("demo", help="simulate a small multi-core archive and run everything on it",
                       description=__doc__.split("\n\n")[1].replace("\n", " "),
                       conflict_handler="resolve")  # a clash of stage options must not break the CLI
    p.add_argument("archive", metavar="ARCHIVE", nargs="?", default=DEFAULT_ARCHIVE,
                   help=f"where to create the demo archive (default: {DEFAULT_ARCHIVE})")
    demo = p.add_argument_group("the simulated archive")
    demo.add_argument("--cores", type=int, default=2, metavar="N", help="cores to simulate (default 2, at most 4)")
    demo.add_argument("--depths", type=int, default=3, metavar="N", help="depth intervals per core (default 3)")
    demo.add_argument("--positions", type=int, default=8, metavar="N",
                      help="stage positions (stacks of 6 frames) per sample (default 8)")
    demo.add_argument("--frame", default="256x320", metavar="HxW", help="frame size in pixels (default 256x320)")
    demo.add_argument("--sim-seed", type=int, default=0, metavar="N", help="seed of the simulated plates (default 0)")
    _options.add_dask(p)
    for module in STAGE_COMMANDS.values():
        module.add_stage_options(p)
    known = {action.dest for action in p._actions}
    p.set_defaults(func=run, core=None, depth=None,
                   **{k: v for k, v in DEMO_STAGE_DEFAULTS.items() if k in known})
    return p


def demo_samples(n_cores: int, n_depths: int) -> list[tuple[object, dict[str, float]]]:
    """The demo's samples: ``(SampleKey, grain kind fractions)``, 2 cm intervals 50 cm apart.

    Examples
    --------
    >>> [(k.name, round(f["foram_broken"], 2)) for k, f in demo_samples(1, 2)]
    [('DEMO-1_10-12cm', 0.15), ('DEMO-1_60-62cm', 0.3)]
    """
    from catalog import SampleKey

    out = []
    for c in range(n_cores):
        for d in range(n_depths):
            down = d / max(n_depths - 1, 1)  # 0 at the top, 1 at the bottom of the core
            shift = 0.05 * c
            fractions = {"quartz": 0.35 - 0.1 * down + shift, "dark": 0.15 + 0.05 * down,
                         "foram_intact": 0.35 - 0.1 * down - shift, "foram_broken": 0.15 + 0.15 * down}
            out.append((SampleKey(CORES[c], 10 + 50 * d, 12 + 50 * d), fractions))
    return out


def simulate_archive(root: str, n_cores: int, n_depths: int, n_positions: int, height: int, width: int,
                     seed: int = 0, quiet: bool = False) -> list:
    """Simulate the demo's samples into ``root`` (those already acquired are kept); return their keys."""
    from acquisition.sim import simulate_sample
    from catalog import Archive

    archive = Archive.create(root)
    keys = []
    for i, (key, fractions) in enumerate(demo_samples(n_cores, n_depths)):
        keys.append(key)
        if archive.exists(key):
            info = [row for row in archive.samples() if row.key == key]
            if info and info[0].status != "acquiring":
                continue
            archive.remove_sample(key)  # a simulation killed half-way: start that sample again
        simulate_sample(archive, key, n_positions=n_positions, height=height, width=width,
                        seed=seed * 100 + i, kind_fractions=fractions)
        if not quiet:
            print(f"demo: simulated {key.name} ({n_positions} positions)", file=sys.stderr, flush=True)
    return keys


def run(args: argparse.Namespace) -> int:
    import time

    from catalog.errors import SedarchiveError
    from sedarchive.commands import run as run_command

    if not 1 <= args.cores <= len(CORES) or args.depths < 1 or args.positions < 1:
        raise SedarchiveError(f"demo needs 1-{len(CORES)} cores, and at least one depth and one position")
    try:
        height, width = (int(v) for v in args.frame.lower().split("x"))
    except ValueError:
        raise SedarchiveError(f"--frame {args.frame!r} is not a frame size like 256x320") from None
    if height < 64 or width < 64:
        raise SedarchiveError(f"--frame {args.frame}: frames need at least 64x64 pixels")
    start = time.monotonic()
    simulate_archive(args.archive, args.cores, args.depths, args.positions, height, width, args.sim_seed, args.quiet)
    report = run_command.execute(args)
    from catalog import Archive

    archive = Archive.open(args.archive)
    if "report" not in {s.name for s in report.stages if not s.error}:
        return report.exit_code
    print(f"\ndemo: finished in {time.monotonic() - start:.0f} s. Open the report in a browser:\n"
          f"  {archive.report_dir / 'index.html'}\n"
          f"and the proportions (counts per sample and cluster) in Python:\n"
          f"  import xarray as xr\n"
          f"  props = xr.open_zarr({str(archive.proportions_path)!r}); print(props)")
    return report.exit_code
