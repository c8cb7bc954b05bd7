"""The ``boundary`` method: a small U-Net that calls every pixel plate, grain interior or grain boundary.

As in the segmenteverygrain project (before its SAM step), grains are then the watershed of the
boundary probability, flooded from markers where the interior probability is high, inside the
pixels that are not plate. The network sees every photograph at one grain scale: the image is
resized so that its median grain is :data:`GRAIN_PX` pixels across. That scale is given
(``grain_px``, the median grain diameter in pixels of the photograph) or estimated by the network
itself at a few trial scales (:func:`estimate_grain_px`; it was trained on grains from 0.6x to 1.6x
that size, so an estimate within that range still finds the grains whole).

Weights are a file the user points at (``SegmentSettings.weights``), written by
:func:`sedarchive.segmentation.boundary_train.train_boundary` (``bench/train_boundary.py``);
nothing is downloaded. CPU only, one thread by default.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from sedarchive.errors import InputError

#: Median grain diameter (pixels) at which the network sees a photograph.
GRAIN_PX = 32.0
#: Classes of the network's output.
CLASSES = ("plate", "interior", "boundary")
#: Median grain diameters (pixels of the photograph) tried when the scale is estimated.
TRIAL_GRAIN_PX = (20.0, 32.0, 50.0, 80.0, 128.0, 200.0)
FORMAT = "sedarchive-boundary-unet"


def _net(widths: tuple[int, ...]):
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        """Encoder of ``len(widths)`` levels (max-pool between), decoder with skips, 3 classes out."""

        def __init__(self) -> None:
            super().__init__()
            self.down = nn.ModuleList(block(c_in, c) for c_in, c in zip((3, *widths[:-1]), widths))
            self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                    for i in range(len(widths) - 1))
            self.merge = nn.ModuleList(block(2 * widths[i], widths[i]) for i in range(len(widths) - 1))
            self.head = nn.Conv2d(widths[0], len(CLASSES), 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for i, level in enumerate(self.down):
                x = level(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for i in reversed(range(len(self.up))):
                x = self.merge[i](torch.cat([skips[i], self.up[i](x)], 1))
            return self.head(x)

    return UNet()


class BoundaryModel:
    """The network and what it was trained with (``widths``, ``grain_px``, free-form ``info``)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), grain_px: float = GRAIN_PX,
                 info: dict | None = None, seed: int = 0) -> None:
        import torch

        torch.manual_seed(seed)
        self.widths = tuple(int(w) for w in widths)
        self.grain_px = float(grain_px)
        self.info = dict(info or {})
        self.net = _net(self.widths).eval()

    @property
    def stride(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def save(self, path: str | Path) -> Path:
        """Write the weights (float16) and settings to ``path`` (a ``.pt`` file)."""
        import torch

        path = Path(path)
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in self.net.state_dict().items()}
        torch.save({"format": FORMAT, "widths": list(self.widths), "grain_px": self.grain_px,
                    "info": self.info, "state": state}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> BoundaryModel:
        """The model saved at ``path``; a missing or foreign file is an :class:`InputError`."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise InputError(f"boundary weights {path}: no such file (train them with bench/train_boundary.py)")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("format") != FORMAT:
                raise ValueError
            model = cls(tuple(saved["widths"]), saved["grain_px"], saved.get("info"))
            model.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved["state"].items()})
        except Exception:
            raise InputError(f"boundary weights {path}: not a weights file of the boundary method") from None
        model.net.eval()
        return model


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> BoundaryModel:
    return BoundaryModel.load(path)


def load_weights(path: str | Path) -> BoundaryModel:
    """:meth:`BoundaryModel.load`, kept in memory per file (a stage segments many frames with one model)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise InputError(f"boundary weights {path}: no such file (train them with bench/train_boundary.py)")
    return _cached(str(path), path.stat().st_mtime)


def normalise(rgb: np.ndarray) -> np.ndarray:
    """``(3, h, w)`` float32: each channel minus its mean, over the image's overall spread."""
    x = rgb.astype(np.float32).transpose(2, 0, 1)
    x -= x.reshape(3, -1).mean(1)[:, None, None]
    return x / max(float(x.std()), 1.0)


def probabilities(model: BoundaryModel, rgb: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Class probabilities ``(3, h', w')`` of the RGB image resized by ``scale`` (``h' = round(h * scale)``)."""
    import cv2
    import torch

    h, w = rgb.shape[:2]
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR) if scale != 1 else rgb
    x = normalise(img)
    s = model.stride
    ph, pw = -x.shape[1] % s, -x.shape[2] % s
    x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect")
    with torch.inference_mode():
        logits = model.net(torch.from_numpy(x)[None])[0]
        prob = torch.softmax(logits, 0).numpy()
    return prob[:, :img.shape[0], :img.shape[1]]


def instances(prob: np.ndarray, min_area_px: int = 0, *, marker_level: float = 0.5) -> np.ndarray:
    """Grain labels (int32, 0 plate) from class probabilities: interior markers, watershed on the boundary.

    Examples
    --------
    >>> prob = np.zeros((3, 20, 40), np.float32); prob[0] = 1
    >>> for x0 in (2, 20):  # two grains side by side, one boundary pixel ring each
    ...     prob[:, 2:18, x0:x0 + 16] = np.array([0, 0, 1], np.float32)[:, None, None]
    ...     prob[:, 3:17, x0 + 1:x0 + 15] = np.array([0, 1, 0], np.float32)[:, None, None]
    >>> labels = instances(prob); int(labels.max()), int((labels == 1).sum())
    (2, 256)
    """
    import cv2
    from skimage.segmentation import watershed

    plate, interior, boundary = prob
    grain = plate < 0.5
    core = ((interior > marker_level) & (interior > boundary)).astype(np.uint8)
    core = cv2.morphologyEx(core, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, markers = cv2.connectedComponents(core, connectivity=4, ltype=cv2.CV_32S)
    if n <= 1:
        return np.zeros(plate.shape, np.int32)
    labels = watershed(boundary, markers, mask=grain | (markers > 0))
    if min_area_px > 1:
        areas = np.bincount(labels.ravel())
        small = areas < min_area_px
        small[0] = False
        labels[small[labels]] = 0
        _, labels = np.unique(labels, return_inverse=True)
        labels = labels.reshape(plate.shape)
    return labels.astype(np.int32)


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent-disc diameter (pixels) of the objects of ``labels``; ``nan`` without any."""
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(4 * areas / np.pi))) if len(areas) else float("nan")


def estimate_grain_px(model: BoundaryModel, rgb: np.ndarray, trials: tuple[float, ...] = TRIAL_GRAIN_PX,
                      sample: int = 384) -> float:
    """The photograph's median grain diameter (pixels), estimated with the network at trial scales.

    Each trial assumes grains ``d`` pixels across, segments the image resized to make them
    :data:`GRAIN_PX`, and brings its grains' median diameter back to the photograph's pixels: one
    estimate per trial. A trial far from the true scale errs both ways (grains that look too large
    are split, too small ones merged or missed: its estimate leans towards ``d``), so the median of
    the trials' estimates is kept. Each trial looks at the middle of the photograph only, ``sample``
    pixels square after resizing (about 12 x 12 grains).
    """
    estimates = []
    h, w = rgb.shape[:2]
    for d in trials:
        scale = model.grain_px / d
        if min(h, w) * scale < 4 * model.stride:
            continue
        ch, cw = min(h, round(sample / scale)), min(w, round(sample / scale))
        crop = rgb[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        found = median_diameter(instances(probabilities(model, crop, scale), min_area_px=int(0.05 * model.grain_px ** 2)))
        if not math.isnan(found):
            estimates.append(found / scale)
    if not estimates:
        raise InputError("boundary method: no grain found at any trial scale (an empty plate, or not grains?)")
    return float(np.median(estimates))


def segment_boundary(frame: np.ndarray, weights: str | Path | None, *, grain_px: float | None = None,
                     min_area_px: int = 30, what: str = "frame") -> np.ndarray:
    """Grain labels (int32, 0 plate) of one RGB frame by the boundary network of ``weights``."""
    if not weights:
        raise InputError(f"{what}: the boundary method needs weights (segment setting `weights`, a file of "
                         "bench/train_boundary.py)")
    model = load_weights(weights)
    if grain_px is None:
        grain_px = estimate_grain_px(model, frame)
    scale = model.grain_px / float(grain_px)
    prob = probabilities(model, frame, scale)
    labels = instances(prob, min_area_px=max(1, int(min_area_px * scale * scale)))
    if labels.shape != frame.shape[:2]:  # nearest neighbour back to the frame's pixels
        rows = np.minimum((np.arange(frame.shape[0]) + 0.5) * labels.shape[0] / frame.shape[0], labels.shape[0] - 1)
        cols = np.minimum((np.arange(frame.shape[1]) + 0.5) * labels.shape[1] / frame.shape[1], labels.shape[1] - 1)
        labels = labels[rows.astype(int)[:, None], cols.astype(int)[None, :]]
    return np.ascontiguousarray(labels, dtype=np.int32)
