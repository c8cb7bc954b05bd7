"""Training of the ``boundary`` method's network from labelled photographs (CPU, one thread).

Each photograph comes with instance labels (one integer per grain, 0 plate) or a ready class map
(0 plate, 1 interior, 2 boundary, as segmenteverygrain's ``*_mask.png``). It is resized so that its
median grain is :data:`~sedarchive.segmentation.boundary.GRAIN_PX` across, at a few scales around
that (the network must tolerate a wrong scale estimate), and the class map is made there: a grain's
pixels within ``band`` pixels of another label are its boundary. Training draws random square tiles,
flipped, turned and recoloured (channels swapped, grey, brightness, contrast, noise: plates and
grains of any colour), and minimises the class-weighted cross entropy.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sedarchive.errors import InputError
from sedarchive.segmentation.boundary import GRAIN_PX, BoundaryModel, median_diameter, normalise


@dataclass
class Photograph:
    """One labelled photograph: RGB uint8, and ``labels`` (instances) or ``classes`` (0/1/2 map)."""

    name: str
    rgb: np.ndarray
    labels: np.ndarray | None = None
    classes: np.ndarray | None = None
    grain_px: float | None = None  # median grain diameter (px); from the labels when None

    def median_grain_px(self) -> float:
        if self.grain_px:
            return float(self.grain_px)
        if self.labels is not None:
            return median_diameter(self.labels)
        import cv2  # class map: interiors, widened by the boundary band they lost

        _, comps = cv2.connectedComponents((self.classes == 1).astype(np.uint8), connectivity=4)
        return median_diameter(comps) + 4.0


@dataclass
class TrainSettings:
    tile: int = 256
    batch: int = 6
    seconds: float = 600.0
    max_steps: int = 100_000
    learning_rate: float = 3e-3
    scales: tuple[float, ...] = (0.6, 0.8, 1.0, 1.3, 1.6)
    band: int = 2
    class_weights: tuple[float, float, float] = (1.0, 1.0, 2.0)
    widths: tuple[int, ...] = (16, 32, 64, 96)
    threads: int = 1
    seed: int = 0
    info: dict = field(default_factory=dict)


def class_map(labels: np.ndarray, band: int = 2) -> np.ndarray:
    """0 plate, 1 interior, 2 boundary (grain pixels within ``band`` pixels of another label).

    >>> labels = np.zeros((8, 12), np.int32); labels[1:7, 1:6] = 1; labels[1:7, 6:11] = 2
    >>> class_map(labels, band=1)[3].tolist()
    [0, 2, 1, 1, 1, 2, 2, 1, 1, 1, 2, 0]
    """
    import cv2

    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    lab = labels.astype(np.float32)
    same = (cv2.dilate(lab, kernel) == lab) & (cv2.erode(lab, kernel) == lab)
    out = np.zeros(labels.shape, np.uint8)
    out[labels > 0] = 2
    out[(labels > 0) & same] = 1
    return out


def _resize_nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(a.astype(np.float32), size, interpolation=cv2.INTER_NEAREST).astype(a.dtype)


def prepare(photo: Photograph, settings: TrainSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rgb, classes)`` pairs of the photograph at every training scale."""
    import cv2

    if (photo.labels is None) == (photo.classes is None):
        raise InputError(f"{photo.name}: give instance labels or a class map, not both or neither")
    target = photo.labels if photo.labels is not None else photo.classes
    if target.shape != photo.rgb.shape[:2]:
        raise InputError(f"{photo.name}: labels {target.shape} do not match the image {photo.rgb.shape[:2]}")
    base = GRAIN_PX / photo.median_grain_px()
    out = []
    h, w = photo.rgb.shape[:2]
    for f in settings.scales:
        s = base * f
        size = (round(w * s), round(h * s))
        if min(size) < settings.tile // 2:
            continue
        rgb = cv2.resize(photo.rgb, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        small = _resize_nearest(target, size)
        out.append((rgb, class_map(small, settings.band) if photo.labels is not None else small.astype(np.uint8)))
    return out


def _augment(rgb: np.ndarray, cls: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(4))
    rgb, cls = np.rot90(rgb, k), np.rot90(cls, k)
    if rng.random() < 0.5:
        rgb, cls = rgb[:, ::-1], cls[:, ::-1]
    x = rgb.astype(np.float32)
    if rng.random() < 0.5:
        x = x[..., rng.permutation(3)]
    if rng.random() < 0.15:
        x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
    if rng.random() < 0.3:
        x = 255.0 - x  # dark grains on a pale plate as well as pale on dark
    x = x * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40) + rng.normal(0, rng.uniform(0, 6), x.shape)
    return np.clip(x, 0, 255), np.ascontiguousarray(cls)


def _tile(pairs, weights, tile: int, rng: np.random.Generator):
    rgb, cls = pairs[rng.choice(len(pairs), p=weights)]
    h, w = cls.shape
    th, tw = min(tile, h), min(tile, w)
    y, x = int(rng.integers(h - th + 1)), int(rng.integers(w - tw + 1))
    rgb, cls = rgb[y:y + th, x:x + tw], cls[y:y + th, x:x + tw]
    if (th, tw) != (tile, tile):
        rgb = np.pad(rgb, ((0, tile - th), (0, tile - tw), (0, 0)), mode="reflect")
        cls = np.pad(cls, ((0, tile - th), (0, tile - tw)), constant_values=255)  # 255: not scored
    return rgb, cls


def train_boundary(photos: Sequence[Photograph], settings: TrainSettings | None = None, *, init=None,
                   log: Callable[[str], None] | None = None) -> BoundaryModel:
    """A :class:`BoundaryModel` trained on ``photos`` for ``settings.seconds`` (or ``max_steps``).

    ``init``: a weights file to start from (training goes on from it).
    """
    import torch

    settings = settings or TrainSettings()
    if not photos:
        raise InputError("train_boundary: no labelled photographs")
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(settings.seed)
    pairs = [p for photo in photos for p in prepare(photo, settings)]
    if not pairs:
        raise InputError("train_boundary: every photograph is smaller than a tile at the training scales")
    area = np.asarray([c.size for _, c in pairs], float)
    weights = np.sqrt(area) / np.sqrt(area).sum()
    info = {"photographs": [p.name for p in photos], **settings.info}
    model = BoundaryModel(settings.widths, GRAIN_PX, info, seed=settings.seed)
    if init is not None:
        model.net.load_state_dict(BoundaryModel.load(init).net.state_dict())
        model.info["init"] = str(init)
    net = model.net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(settings.class_weights, dtype=torch.float32),
                                        ignore_index=255)
    start, step, smooth = time.perf_counter(), 0, None
    while step < settings.max_steps and time.perf_counter() - start < settings.seconds:
        frac = min(1.0, max((time.perf_counter() - start) / settings.seconds, step / settings.max_steps))
        for group in opt.param_groups:
            group["lr"] = settings.learning_rate * 0.5 * (1 + math.cos(math.pi * frac))
        xs, ys = [], []
        for _ in range(settings.batch):
            rgb, cls = _augment(*_tile(pairs, weights, settings.tile, rng), rng)
            xs.append(normalise(rgb))
            ys.append(cls.astype(np.int64))
        logits = net(torch.from_numpy(np.stack(xs)))
        loss = loss_fn(logits, torch.from_numpy(np.stack(ys)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if log and step % 25 == 0:
            log(f"step {step} loss {smooth:.3f} lr {opt.param_groups[0]['lr']:.5f} {time.perf_counter() - start:.0f} s")
    net.eval()
    model.info.update(steps=step, seconds=round(time.perf_counter() - start, 1), final_loss=smooth)
    return model
