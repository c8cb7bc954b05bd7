from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from catalog import Archive, SampleKey, positions_done
from sedarchive.errors import InputError
from sedarchive.ingest import ingest, plan_ingest

N_POS, N_LAYERS, H, W = 5, 6, 24, 32


def _frames(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (N_POS, N_LAYERS, H, W, 3), dtype=np.uint8)


def _write_folder(folder, frames, ext="png"):
    folder.mkdir(parents=True, exist_ok=True)
    for p in range(frames.shape[0]):
        for z in range(frames.shape[1]):
            Image.fromarray(frames[p, z]).save(folder / f"plate1_p{p}_z{z}.{ext}")
    return folder


def _tiff16(path, rgb: np.ndarray) -> None:
    """A baseline uncompressed 16-bit RGB TIFF, written by hand (PIL cannot write one)."""
    import struct

    h, w, _ = rgb.shape
    pixels = rgb.astype("<u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, None), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(pixels))]
    ifd_at = 8
    bits_at = ifd_at + 2 + 12 * len(entries) + 4
    data_at = bits_at + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        value = bits_at if tag == 258 else data_at if tag == 273 else value
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 and count == 1 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + pixels
    path.write_bytes(bytes(out))


def test_16_bit_frames_are_refused_not_cut_to_their_high_byte(archive, tmp_path, dask_client):
    src = _write_folder(tmp_path / "src", _frames(), "tif")
    deep = np.random.default_rng(0).integers(0, 65536, (H, W, 3)).astype(np.uint16)
    _tiff16(src / "plate1_p1_z1.tif", deep)
    from PIL import Image as _Image

    with _Image.open(src / "plate1_p1_z1.tif") as img:  # PIL would open it as 8-bit RGB
        assert img.mode == "RGB" and img.size == (W, H)
    before = _tree_digest(archive.root)
    with pytest.raises(InputError, match="plate1_p1_z1.tif: 16 bits per channel.*convert the frames to 8 bits"):
        ingest(archive, SampleKey("A", 3, 4), plan_ingest(src), dask_client, quiet=True)
    assert _tree_digest(archive.root) == before


def _tree_digest(root) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_folder_ingest_round_trips_every_pixel(archive, tmp_path, dask_client, ext):
    frames = _frames()
    src = _write_folder(tmp_path / "src", frames, ext)
    key = SampleKey("AI-3352", 120, 122)
    assert ingest(archive, key, plan_ingest(src), dask_client, quiet=True) == N_POS
    ds = xr.open_zarr(archive.sample_path(key))
    np.testing.assert_array_equal(ds["stacks"].values, frames)
    assert np.isnan(ds["stage_xy_mm"].values).all()
    assert ds.attrs["status"] == "acquired"
    assert [r.name for r in archive.samples()] == [key.name]


def test_manifest_ingest_keeps_stage_positions(archive, tmp_path, dask_client):
    frames = _frames(1)
    src = _write_folder(tmp_path / "imgs", frames)
    manifest = tmp_path / "manifest.csv"
    rows = ["path,position,layer,x_mm,y_mm"]
    rows += [f"imgs/plate1_p{p}_z{z}.png,{p},{z},{p * 1.5},{-p}" for p in range(N_POS) for z in range(N_LAYERS)]
    manifest.write_text("\n".join(rows) + "\n")
    key = SampleKey("B", 1, 2)
    ingest(archive, key, plan_ingest(manifest), dask_client, quiet=True)
    ds = xr.open_zarr(archive.sample_path(key))
    np.testing.assert_array_equal(ds["stacks"].values, frames)
    np.testing.assert_allclose(ds["stage_xy_mm"].values, [[p * 1.5, -p] for p in range(N_POS)])


def _break(kind, folder):
    if kind == "missing layer":
        (folder / "plate1_p2_z4.png").unlink()
    elif kind == "different sizes":
        Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)).save(folder / "plate1_p1_z0.png")
    elif kind == "truncated":
        path = folder / "plate1_p3_z5.png"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        (folder / "plate1_p0_z3.png").write_bytes(b"not an image at all")
    elif kind == "duplicate":
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "other_p1_z2.png")
    elif kind == "grey":
        Image.fromarray(np.zeros((H, W), np.uint8)).save(folder / "plate1_p4_z1.png")
    elif kind == "bad name":
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "stray.png")
    return folder


BAD = {
    "missing layer": "position 2 lacks focal layer",
    "different sizes": "plate1_p1_z0.png: frame is",
    "truncated": "plate1_p3_z5.png",
    "garbage": "plate1_p0_z3.png: not a readable image",
    "duplicate": "duplicate frame for position 1 layer 2",
    "grey": "plate1_p4_z1.png: colour mode L",
    "bad name": "stray.png: image name",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_is_rejected_and_the_archive_is_unchanged(archive, tmp_path, dask_client, kind):
    good = SampleKey("A", 1, 2)
    ingest(archive, good, plan_ingest(_write_folder(tmp_path / "good", _frames(2))), dask_client, quiet=True)
    before = _tree_digest(archive.root)
    src = _break(kind, _write_folder(tmp_path / "src", _frames()))
    with pytest.raises(InputError, match=BAD[kind]) as err:
        ingest(archive, SampleKey("A", 3, 4), plan_ingest(src), dask_client, quiet=True)
    assert "\n" not in str(err.value)
    assert _tree_digest(archive.root) == before


def test_cli_reports_bad_input_in_one_line_and_exits_non_zero(tmp_path):
    src = _break("missing layer", _write_folder(tmp_path / "src", _frames()))
    proc = subprocess.run(
        [sys.executable, "-m", "sedarchive", "ingest", str(tmp_path / "arch"), str(src), "--core", "A",
         "--depth", "1-2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "position 2 lacks focal layer" in proc.stderr
    assert not (tmp_path / "arch").exists()


def test_a_frame_that_fails_on_a_worker_is_one_line_with_quiet(tmp_path):
    src = _break("truncated", _write_folder(tmp_path / "src", _frames()))
    proc = subprocess.run(
        [sys.executable, "-m", "sedarchive", "ingest", str(tmp_path / "arch"), str(src), "--core", "A",
         "--depth", "1-2", "--quiet", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "plate1_p3_z5.png" in proc.stderr


@pytest.mark.slow
def test_killed_ingest_resumes_to_the_same_bytes(tmp_path, dask_client):
    # enough positions that the kill lands half-way even with fast workers (no malloc trim, issue 16)
    frames = np.random.default_rng(3).integers(0, 256, (64, N_LAYERS, 96, 128, 3), dtype=np.uint8)
    src = _write_folder(tmp_path / "src", frames)
    key = SampleKey("K", 5, 6)

    clean = Archive.create(tmp_path / "clean")
    ingest(clean, key, plan_ingest(src), dask_client, quiet=True)

    resumed = Archive.create(tmp_path / "resumed")
    cmd = [sys.executable, "-m", "sedarchive", "ingest", str(resumed.root), str(src), "--core", "K",
           "--depth", "5-6", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    path = resumed.sample_path(key)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if 0 < positions_done(path).sum():
                break
        except Exception:  # store not there yet
            pass
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = positions_done(path)
    assert 0 < done.sum() < len(done), "the kill should land half-way"
    assert not resumed.is_registered(key)

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    a = xr.open_zarr(clean.sample_path(key))
    b = xr.open_zarr(resumed.sample_path(key))
    np.testing.assert_array_equal(a["stacks"].values, b["stacks"].values)
    digest = lambda arch: {k: v for k, v in _tree_digest(arch.sample_path(key)).items() if "/c/" in k or k.startswith("stacks")}  # noqa: E731
    assert digest(clean) == digest(resumed)
