"""Segmentation benchmark: detection quality against the simulated truth, and speed of slic and fast.

    python bench/segment.py [--quick] [--positions N] [--methods fast] [--workers 2] [--json FILE]

On a simulated sample of full-size frames (1280x1024, 6 focal layers, 1.5 µm per pixel, as at the
paper's 80x) it measures:

- quality of the stored grains of each method against the ground truth (``bench/groundtruth.py``):
  recall, precision, median box IoU, chopped and clump flag agreement;
- the kernels alone, in this process: frames per second (and CPU ms per frame) of slic and fast on
  whole stacks (``segment_stack`` with the sample's plate colour, as the stage runs them), and the
  mask IoU between the two methods on the same frames;
- what a fast segment worker spends per frame, serially: reading and decoding the stack, the
  kernel, layer matching + crops + measures, compressing the grains (CPU ms a frame);
- the whole ``segment`` stage on a LocalCluster with 1 and 2 worker processes (segment, crop,
  measure, write), in frames per second, its CPU per frame (workers, and client with the local
  scheduler) and the load average during the run, and the paper's 58,302 frames extrapolated.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from groundtruth import detection_scores  # noqa: E402

PAPER_FRAMES = 58_302


def kernel_speed(stacks: np.ndarray, n_stacks: int, methods: tuple[str, ...] = ("slic", "fast")) -> dict:
    """Frames per second of the segmentation kernels for both methods, and their mask IoU, on the same
    frames: whole stacks (``segment_stack``) with the sample's plate colour learnt once, as the stage
    segments them (the fast method learns each position's plate model on its middle layer)."""
    from sedarchive.segmentation import SegmentSettings
    from sedarchive.segmentation.background_model import plate_colour
    from sedarchive.segmentation.grains import segment_stack

    stacks = stacks[:n_stacks]
    settings = SegmentSettings()
    plate_lab = plate_colour([stacks[0][len(stacks[0]) // 2]], settings.background)
    out, masks = {}, {}
    for method in methods:
        segment_stack(stacks[0], settings, method=method, plate_lab=plate_lab)  # warm-up: imports, caches
        start, cpu = time.perf_counter(), time.process_time()
        masks[method] = [labels > 0 for stack in stacks
                         for labels in segment_stack(stack, settings, method=method, plate_lab=plate_lab)]
        out[f"{method}_frames_per_s"] = len(masks[method]) / (time.perf_counter() - start)
        out[f"{method}_cpu_ms_per_frame"] = 1000 * (time.process_time() - cpu) / len(masks[method])
    out["n_frames"] = len(masks[methods[0]])
    if set(methods) != {"slic", "fast"}:
        return out
    inter = sum(int((a & b).sum()) for a, b in zip(masks["slic"], masks["fast"]))
    union = sum(int((a | b).sum()) for a, b in zip(masks["slic"], masks["fast"]))
    out["mask_iou"] = inter / union
    out["speedup"] = out["fast_frames_per_s"] / out["slic_frames_per_s"]
    return out


def worker_parts(path, n_stacks: int, method: str = "fast") -> dict:
    """CPU ms per frame of each part of what a segment worker does with a position, serially, in
    this process: read and decode the stack, the kernel (``segment_stack``), layer matching + crops +
    measures (the rest of ``extract_grains``), and compressing each grain once (pass 1)."""
    from catalog import read_array
    from catalog.rawchunks import encode_chunk
    from sedarchive.segmentation import SegmentSettings, extract_grains
    from sedarchive.segmentation.chunks import grains_codec_config, learn_plate
    from sedarchive.segmentation.grains import segment_stack

    settings = SegmentSettings(method=method)
    plate_lab = learn_plate(str(path), settings)
    codec = grains_codec_config()
    cpu = {"read and decode": 0.0, "kernel": 0.0, "matching, crops, measures": 0.0, "compress grains": 0.0}
    n_frames = n_grains = 0
    for position in range(n_stacks + 1):  # position 0 warms up (imports, caches), not counted
        c0 = time.process_time()
        stack = read_array(path, "stacks", position)
        c1 = time.process_time()
        segment_stack(stack, settings, plate_lab=plate_lab)
        c2 = time.process_time()
        crops, _ = extract_grains(stack, settings, position=position, pixel_size_um=1.5, plate_lab=plate_lab)
        c3 = time.process_time()
        for crop in crops:
            encode_chunk(codec, crop)
        c4 = time.process_time()
        if position:
            n_frames += len(stack)
            n_grains += len(crops)
            for name, dt in zip(cpu, (c1 - c0, c2 - c1, (c3 - c2) - (c2 - c1), c4 - c3)):
                cpu[name] += dt
    return {"n_frames": n_frames, "n_grains": n_grains, **{k: 1000 * v / n_frames for k, v in cpu.items()}}


def stage_speed(archive, key, method: str, n_workers: int, positions_per_task: int | None = None) -> tuple[float, dict]:
    """Frames per second of the whole segment stage, and the detection scores of what it stored."""
    from distributed import Client, LocalCluster

    from acquisition.sim import read_truth
    from catalog import read_array
    from catalog.store import array_names, drop_variables
    from sedarchive.dask.environ import worker_config
    from sedarchive.segmentation import SegmentSettings
    from sedarchive.segmentation.stage import run_stage

    settings = SegmentSettings(method=method)
    if positions_per_task:
        settings = settings.replace(positions_per_task=positions_per_task)
    path = archive.sample_path(key)
    n_frames = int(np.prod(read_array(path, "stacks", (slice(None), slice(None), 0, 0, 0)).shape))
    with worker_config():  # workers as sedarchive starts them (no malloc trim)
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=40)
    with cluster, Client(cluster) as client:
        client.run(lambda: __import__("sedarchive.segmentation.chunks") and __import__("skimage.segmentation"))
        # A fresh sample: what an earlier run wrote is removed outside the timing.
        drop_variables(path, [n for n in array_names(path) if n not in ("stacks", "stage_xy_mm", "position_done")])
        archive.set_status(key, "acquired")
        workers, client_cpu = sum(client.run(time.process_time).values()), time.process_time()
        load = os.getloadavg()[0]
        start = time.perf_counter()
        report = run_stage(archive, [key], client, settings, quiet=True)
        elapsed = time.perf_counter() - start
        # CPU of the workers and of this process (the client, with the local scheduler): what the
        # stage costs whatever the load
        workers = sum(client.run(time.process_time).values()) - workers
        client_cpu = time.process_time() - client_cpu
    if not report.ok:
        raise SystemExit(f"segment failed: {report.failures}")
    scores = detection_scores(read_array(path, "position"), read_array(path, "bbox"), read_array(path, "chopped"),
                              read_array(path, "clump"), read_truth(path))
    return n_frames / elapsed, {**scores, "cpu_ms_per_frame": 1000 * (workers + client_cpu) / n_frames,
                                "worker_cpu_ms_per_frame": 1000 * workers / n_frames,
                                "client_cpu_ms_per_frame": 1000 * client_cpu / n_frames,
                                "positions_per_task": settings.positions_per_task,
                                "load_before": load, "load_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer positions (a smoke run)")
    parser.add_argument("--positions", type=int, help="stack positions of the simulated sample (default 4, quick 2)")
    parser.add_argument("--grains-per-mm2", type=float, default=10.0, help="grain density of the simulated plate")
    parser.add_argument("--clump-fraction", type=float, default=0.1, help="share of grains dropped touching another")
    parser.add_argument("--methods", default="slic,fast", help="comma-separated methods (default slic,fast)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--positions-per-task", type=int, help="stack positions per Dask task (default: the stage's)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    n_positions = args.positions or (2 if args.quick else 4)
    methods = tuple(m for m in args.methods.split(",") if m)
    worker_counts = tuple(int(w) for w in args.workers.split(",") if w)
    if not methods or set(methods) - {"slic", "fast"} or not worker_counts or min(worker_counts) < 1:
        parser.error("--methods takes slic and/or fast, --workers positive integers")

    from acquisition.sim import simulate_sample
    from catalog import Archive, SampleKey, read_array

    figures: dict = {"positions": n_positions, "frame": "1280x1024, 6 layers, 1.5 um/px",
                     "load_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive.create(Path(tmp) / "archive")
        key = SampleKey("BENCH", 100, 102)
        path = simulate_sample(archive, key, n_positions=n_positions, height=1024, width=1280, n_layers=6,
                               seed=7, pixel_size_um=1.5, grains_per_mm2=args.grains_per_mm2,
                               clump_fraction=args.clump_fraction)
        stacks = read_array(path, "stacks")
        figures["kernels"] = kernel_speed(stacks, 1 if args.quick else 2, methods)
        if "fast" in methods:
            figures["parts"] = worker_parts(path, min(n_positions - 1, 1 if args.quick else 4))
        figures["stage"] = {}
        for method in methods:
            for n_workers in worker_counts:
                rate, scores = stage_speed(archive, key, method, n_workers, args.positions_per_task)
                figures["stage"][f"{method}/{n_workers}"] = {"frames_per_s": rate, **scores}

    k = figures["kernels"]
    print(f"load average {figures['load_at_start']:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
          f"(1 min) on {os.cpu_count()} cores")
    print(f"simulated sample: {n_positions} positions x 6 layers of 1280x1024 (1.5 um/px), "
          f"{args.grains_per_mm2:g} grains/mm2; figures taken on a shared machine under load")
    print()
    rates = ", ".join(f"{m} {k[f'{m}_frames_per_s']:.2f} frames/s ({k[f'{m}_cpu_ms_per_frame']:.0f} ms CPU a frame)"
                      for m in methods)
    both = f", fast/slic {k['speedup']:.0f}x, mask IoU {k['mask_iou']:.3f}" if "mask_iou" in k else ""
    print(f"kernels ({k['n_frames']} frames, 1 process): {rates}{both}")
    if "parts" in figures:
        p = figures["parts"]
        parts = ", ".join(f"{name} {v:.1f}" for name, v in p.items() if name not in ("n_frames", "n_grains"))
        print(f"a fast segment worker's CPU ms a frame, serially ({p['n_frames']} frames, {p['n_grains']} grains): "
              f"{parts}; sum {sum(v for n, v in p.items() if n not in ('n_frames', 'n_grains')):.1f}")
    print()
    header = ("method", "workers", "frames/s", "58,302 frames", "recall", "precision", "median IoU",
              "chopped ok", "chopped flagged", "clump ok", "clump R/P")
    rows = []
    for name, s in figures["stage"].items():
        method, workers = name.split("/")
        hours = PAPER_FRAMES / s["frames_per_s"] / 3600
        rows.append((method, workers, f"{s['frames_per_s']:.2f}", f"{hours:.1f} h", f"{s['recall']:.3f}",
                     f"{s['precision']:.3f}", f"{s['median_iou']:.3f}", f"{s['chopped_accuracy']:.3f}",
                     f"{s['chopped_flagged']:.3f}", f"{s['clump_accuracy']:.3f}",
                     f"{s['clump_recall']:.2f}/{s['clump_precision']:.2f}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths)))
    stage = figures["stage"]
    for method in methods:
        kernel = k[f"{method}_frames_per_s"]
        for n_workers in worker_counts:
            share = stage[f"{method}/{n_workers}"]["frames_per_s"] / kernel
            figures["stage"][f"{method}/{n_workers}"]["share_of_kernel"] = share
            run = stage[f"{method}/{n_workers}"]
            print(f"{method}, {n_workers} workers, {run['positions_per_task']} positions a task: the stage at "
                  f"{100 * share:.0f} % of the one-process kernel's frames/s; {run['cpu_ms_per_frame']:.0f} ms CPU a "
                  f"frame (workers {run['worker_cpu_ms_per_frame']:.0f} + client and scheduler "
                  f"{run['client_cpu_ms_per_frame']:.0f}), at most {2000 / run['cpu_ms_per_frame']:.0f} frames/s on 2 "
                  f"idle cores; load {run['load_before']:.2f} -> {run['load_after']:.2f} during the run")
        if {1, 2} <= set(worker_counts):
            scaling = stage[f"{method}/2"]["frames_per_s"] / stage[f"{method}/1"]["frames_per_s"]
            figures[f"{method}_2_over_1_workers"] = scaling
            print(f"{method}: 2 workers / 1 worker = {scaling:.2f}x")
    s = next(iter(stage.values()))
    print(f"truth: {s['n_true']} objects, {s['n_chopped']} chopped, {s['n_clump']} clumps")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
