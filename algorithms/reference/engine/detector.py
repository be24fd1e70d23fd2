"""Person detectors behind one tiny interface.

A detector takes a ``Picture`` (frames.py: asks for the size and pixel format
it works on) and returns Detections with boxes normalised to 0..1 and a
Confidence in 0..1. To plug in another model, implement ``Detector`` and
register a factory in ``DETECTORS``.

- ``hog``: OpenCV's HOG + linear SVM; no model file, always available.
- ``ssdlite``: an SSDLite-MobileNetV2 pedestrian network run by onnxruntime
  on a 300x300 picture; about 4x cheaper than HOG per analysed frame. Its model
  file is put into the package by ``build_reference_package --detector ssdlite``
  (from scripts/fetch-detector.sh).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from .frames import Picture
from .rules import Detection

SSDLITE_MODEL = "ssdlite_pedestrian.onnx"
MODELS_DIR = Path(__file__).resolve().parent / "models"


class DetectorError(RuntimeError):
    """A detector cannot be built; ``str()`` says what to do about it."""


class Detector(Protocol):
    name: str

    def detect(self, picture: Picture, min_confidence: float) -> list[Detection]: ...


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

    def detect(self, picture: Picture, min_confidence: float) -> list[Detection]:
        h, w = picture.height, picture.width
        k = self.working_height / float(h) if self.working_height > 0 else 1.0
        if abs(k - 1.0) > 0.02:
            img = picture.resized(max(64, round(w * k)), max(128, round(h * k)))
        else:
            img = picture.bgr()
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


def ssdlite_confidence(score: float) -> float:
    """The network's class score mapped onto the scale the sensitivity levels
    were set on (rules.SENSITIVITY_LEVELS, HOG's margins): score 0.15 -> 0.5
    (high sensitivity), 0.3 -> 0.73 (medium, the default), 0.5 -> 0.88 (low).
    Measured on vtest at 1080p: medium finds 3.9 people per frame where HOG
    at medium finds 4.2, and nothing on pictures without people."""
    s = min(max(score, 1e-6), 1 - 1e-6)
    return 1.0 / (1.0 + math.exp(-(math.log(s / (1 - s)) * 1.148 + 1.992)))


class SsdLiteDetector:
    """SSDLite-MobileNetV2 trained for one class (pedestrian), as an ONNX
    graph with its own post-processing (box decoding and NMS) inside; run by
    onnxruntime on one thread, so that several tasks share the cores without
    oversubscribing them."""

    name = "ssdlite"
    input_size = 300

    def __init__(self, model_path: str | Path = "", threads: int = 1) -> None:
        path = Path(model_path) if model_path else MODELS_DIR / SSDLITE_MODEL
        if not path.is_file():
            raise DetectorError(
                f"ENGINE_DETECTOR=ssdlite needs its model {path}: build the package with "
                "`manage.py build_reference_package --detector ssdlite` "
                "(after scripts/fetch-detector.sh) or set ENGINE_MODEL_PATH"
            )
        try:
            import onnxruntime as ort
        except ImportError:
            raise DetectorError(
                "ENGINE_DETECTOR=ssdlite needs onnxruntime in the engine's Python"
            ) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [
            "num_detections:0",
            "detection_scores:0",
            "detection_boxes:0",
            "detection_classes:0",
        ]

    def detect(self, picture: Picture, min_confidence: float) -> list[Detection]:
        size = self.input_size
        batch = picture.resized(size, size, "rgb24")[np.newaxis]
        count, scores, boxes, classes = self._session.run(self._outputs, {self._input: batch})
        found: list[Detection] = []
        for i in range(int(count[0])):
            if int(classes[0][i]) != 1:
                continue
            conf = ssdlite_confidence(float(scores[0][i]))
            if conf < min_confidence:
                continue
            y0, x0, y1, x1 = (min(1.0, max(0.0, float(v))) for v in boxes[0][i])
            if x1 <= x0 or y1 <= y0:
                continue
            found.append(Detection(box=(x0, y0, x1 - x0, y1 - y0), confidence=conf))
        found.sort(key=lambda d: -d.confidence)
        return found


DETECTORS: dict[str, Callable[..., Any]] = {"hog": HogDetector, "ssdlite": SsdLiteDetector}


def make_detector(name: str, **options: Any) -> Detector:
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown detector {name!r} (available: {', '.join(sorted(DETECTORS))})"
        ) from None
    detector: Detector = factory(**options)
    return detector
