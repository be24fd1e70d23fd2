"""Person detectors behind one tiny interface.

A detector takes a BGR frame (numpy uint8 HxWx3) and returns Detections with
boxes normalised to 0..1 and a Confidence in 0..1. To plug in another model,
implement ``Detector`` and register a factory in ``DETECTORS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from .rules import Detection


class Detector(Protocol):
    name: str

    def detect(self, frame: np.ndarray, min_confidence: float) -> list[Detection]: ...


def hog_confidence(weight: float) -> float:
    """HOG's SVM margin mapped to 0..1: 0.5 at margin 0.5, 0.73 at 1.0, 0.88 at 1.5."""
    return 1.0 / (1.0 + math.exp(-2.0 * (weight - 0.5)))


class HogDetector:
    """OpenCV's built-in HOG + linear SVM pedestrian detector (Dalal-Triggs,
    64x128 window; the weights are compiled into OpenCV, no model file).

    The frame is resized so that its height is ``working_height`` pixels before
    detection: upscaled when people would be smaller than the 128 px window,
    downscaled for large frames only so far that a person of
    ``128 / working_height`` of the frame height is still 128 px tall. With the
    default 800 px that is 16% of the frame height (about 92 px in a 576-line
    frame, 173 px at 1080p).
    """

    name = "hog"

    def __init__(
        self,
        working_height: int = 800,
        scale: float = 1.15,
        win_stride: int = 8,
        padding: int = 8,
    ) -> None:
        self.working_height = working_height
        self.scale = scale
        self.win_stride = (win_stride, win_stride)
        self.padding = (padding, padding)
        self._hog = cv2.HOGDescriptor()
        weights = np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32)
        self._hog.setSVMDetector(weights)

    def detect(self, frame: np.ndarray, min_confidence: float) -> list[Detection]:
        h, w = frame.shape[:2]
        k = self.working_height / float(h) if self.working_height > 0 else 1.0
        img = frame
        if abs(k - 1.0) > 0.02:
            img = cv2.resize(
                frame,
                (max(64, round(w * k)), max(128, round(h * k))),
                interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
            )
        ih, iw = img.shape[:2]
        rects, weights = self._hog.detectMultiScale(
            img, winStride=self.win_stride, padding=self.padding, scale=self.scale
        )
        found: list[Detection] = []
        for (x, y, bw, bh), wt in zip(rects, np.asarray(weights).ravel(), strict=False):
            conf = hog_confidence(float(wt))
            if conf < min_confidence:
                continue
            # clip to the frame: boxes may reach into the padding
            x0, y0 = max(0.0, x / iw), max(0.0, y / ih)
            x1, y1 = min(1.0, (x + bw) / iw), min(1.0, (y + bh) / ih)
            found.append(Detection(box=(x0, y0, x1 - x0, y1 - y0), confidence=conf))
        found.sort(key=lambda d: -d.confidence)
        return found


DETECTORS: dict[str, Callable[..., Any]] = {"hog": HogDetector}


def make_detector(name: str, **options: Any) -> Detector:
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown detector {name!r} (available: {', '.join(sorted(DETECTORS))})"
        ) from None
    detector: Detector = factory(**options)
    return detector
