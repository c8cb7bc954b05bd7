"""An OpenCV camera: ``cv2.VideoCapture`` by index, device path, URL or image sequence.

USB microscope cameras (UVC) appear as an index (0, 1, ...) or ``/dev/videoN``; network cameras
as an ``rtsp://`` or ``http://`` URL. Frames come back RGB. After every stage move the runner
calls :meth:`OpenCVCamera.flush`, which grabs and drops ``discard`` frames: cameras keep a few
frames in their buffer, exposed while the stage was still moving.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from acquisition.errors import CameraError


def parse_source(text: str | int) -> int | str:
    """``"0"`` -> camera index 0; anything else (path, URL) stays a string.

    Examples
    --------
    >>> parse_source("1"), parse_source("rtsp://cam/stream")
    (1, 'rtsp://cam/stream')
    """
    if isinstance(text, int):
        return text
    return int(text) if text.strip().isdigit() else text


class OpenCVCamera:
    """A camera read through OpenCV.

    Parameters
    ----------
    source
        Camera index, device path, stream URL, or an image-sequence pattern such as ``frames/%03d.png``.
    width, height
        Resolution to ask for (the camera may refuse: the runner checks frame shapes against the plan).
    discard
        Frames dropped after each move.
    """

    def __init__(self, source: int | str, *, width: int | None = None, height: int | None = None, discard: int = 2):
        self.source = parse_source(source)
        self.width, self.height, self.discard = width, height, int(discard)
        self.name = f"camera {self.source!r}"
        self._capture: Any = None

    def __enter__(self) -> OpenCVCamera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        import cv2

        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            raise CameraError(f"{self.name} could not be opened (camera index, /dev/videoN, URL or image pattern)")
        if self.width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(self.width))
        if self.height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(self.height))
        self._capture = capture

    def flush(self) -> None:
        if self._capture is None:
            raise CameraError(f"{self.name} is not connected")
        for _ in range(self.discard):
            self._capture.grab()

    def snap(self) -> np.ndarray:
        import cv2

        if self._capture is None:
            raise CameraError(f"{self.name} is not connected")
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise CameraError(f"{self.name} returned no frame (unplugged, or the stream ended?)")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        else:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if frame.dtype != np.uint8:
            raise CameraError(f"{self.name} gives {frame.dtype} frames; only 8-bit colour is supported")
        return frame

    @property
    def settings(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": str(self.source), "discard": self.discard}
        if self._capture is not None:
            import cv2

            data["width"] = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            data["height"] = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            try:
                data["backend"] = self._capture.getBackendName()
            except cv2.error:
                pass
        return data

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
