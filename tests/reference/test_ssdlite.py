"""The reference algorithm's neural detector (ENGINE_DETECTOR=ssdlite): the
real ONNX model from scripts/fetch-detector.sh run by onnxruntime on real
footage, in-process, in a real engine process and from a built package."""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from django.core.management.base import CommandError

from algorithms.reference.engine.detector import (
    DetectorError,
    HogDetector,
    SsdLiteDetector,
    make_detector,
    ssdlite_confidence,
)
from algorithms.reference.engine.frames import Picture
from algorithms.reference.engine.rules import DEFAULT_MIN_CONFIDENCE, SENSITIVITY_LEVELS
from tests.reference.conftest import (
    EngineProcess,
    Receiver,
    build_reference_package,
    start_engine,
    task_body,
)


def frames_of(clip: Path, every: int = 25, count: int = 12) -> list[Picture]:
    pictures = []
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                pictures.append(Picture.of_frame(frame))
            if len(pictures) == count:
                break
    return pictures


@pytest.fixture(scope="module")
def pictures(media: Path) -> list[Picture]:
    return frames_of(media / "vtest_1080p25_20s.mp4")


def test_the_sensitivity_levels_map_onto_network_scores() -> None:
    assert ssdlite_confidence(0.15) == pytest.approx(SENSITIVITY_LEVELS["high"], abs=0.005)
    assert ssdlite_confidence(0.3) == pytest.approx(SENSITIVITY_LEVELS["medium"], abs=0.01)
    assert ssdlite_confidence(0.5) == pytest.approx(SENSITIVITY_LEVELS["low"], abs=0.005)
    scores = np.linspace(0.01, 0.99, 50)
    mapped = [ssdlite_confidence(float(s)) for s in scores]
    assert mapped == sorted(mapped)
    assert mapped[0] > 0 and mapped[-1] < 1


def test_people_walking_in_1080p_are_found_like_hog_finds_them(
    ssdlite_model: Path, pictures: list[Picture]
) -> None:
    ssd = SsdLiteDetector(ssdlite_model)
    hog = HogDetector()
    ssd_counts, hog_counts = [], []
    for picture in pictures:
        found = ssd.detect(picture, DEFAULT_MIN_CONFIDENCE)
        ssd_counts.append(len(found))
        hog_counts.append(len(hog.detect(picture, DEFAULT_MIN_CONFIDENCE)))
        assert [d.confidence for d in found] == sorted((d.confidence for d in found), reverse=True)
        for d in found:
            x, y, w, h = d.box
            assert DEFAULT_MIN_CONFIDENCE <= d.confidence <= 1
            assert min(x, y) >= 0 and max(x + w, y + h) <= 1 + 1e-6
            assert h * 1080 > w * 1920  # upright people, in pixels
    # vtest shows 3 to 6 people at a time; HOG at the same sensitivity finds about 4
    assert np.mean(ssd_counts) >= 2.5, ssd_counts
    assert min(ssd_counts) >= 1, ssd_counts
    assert abs(np.mean(ssd_counts) - np.mean(hog_counts)) <= 1.0, (ssd_counts, hog_counts)
    # a higher sensitivity accepts more, a lower one less
    many = sum(len(ssd.detect(p, SENSITIVITY_LEVELS["high"])) for p in pictures)
    few = sum(len(ssd.detect(p, SENSITIVITY_LEVELS["low"])) for p in pictures)
    assert few <= sum(ssd_counts) <= many and few < many


def test_a_picture_without_people_gives_nothing(ssdlite_model: Path) -> None:
    ssd = SsdLiteDetector(ssdlite_model)
    h, w = 1080, 1920
    ramp = np.tile(np.linspace(40, 200, w, dtype=np.uint8), (h, 1))
    image = np.dstack([ramp, ramp[::-1], np.full((h, w), 90, np.uint8)])
    image[300:700, 400:900] = (30, 160, 220)  # a big flat box
    assert ssd.detect(Picture.of_image(image), SENSITIVITY_LEVELS["high"]) == []


def test_a_still_image_and_the_decoded_frame_agree(
    ssdlite_model: Path, pictures: list[Picture]
) -> None:
    ssd = SsdLiteDetector(ssdlite_model)
    for picture in pictures[:4]:
        from_frame = ssd.detect(picture, DEFAULT_MIN_CONFIDENCE)
        from_array = ssd.detect(Picture.of_image(picture.bgr()), DEFAULT_MIN_CONFIDENCE)
        assert abs(len(from_frame) - len(from_array)) <= 1


def test_a_missing_model_is_refused_with_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match=r"fetch-detector\.sh"):
        make_detector("ssdlite", model_path=str(tmp_path / "none.onnx"))
    with pytest.raises(ValueError, match="available: hog, ssdlite"):
        make_detector("yolo")


def test_an_engine_without_its_model_exits_at_start_and_says_why(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"cannot build the detector.*fetch-detector\.sh"):
        start_engine(
            tmp_path / "engine.log",
            ENGINE_DETECTOR="ssdlite",
            ENGINE_MODEL_PATH=str(tmp_path / "none.onnx"),
        )


def test_an_engine_with_ssdlite_analyses_video_and_sends_people(
    ssdlite_model: Path, receiver: Receiver, media: Path, tmp_path: Path
) -> None:
    engine: EngineProcess = start_engine(
        tmp_path / "engine.log",
        EVENT_SINK_URL=receiver.url,
        ENGINE_ID="ssd-engine",
        ENGINE_FILE_SPEED="0",
        ENGINE_ANALYSIS_FPS="2.5",
        ENGINE_DETECTOR="ssdlite",
        ENGINE_MODEL_PATH=str(ssdlite_model),
    )
    try:
        assert engine.ok("GET", "/Health")["Detector"] == "ssdlite"
        engine.ok("POST", "/AlgoTasks", task_body("ssd", str(media / "vtest_8s.mp4"), repeat=1))
        done = engine.wait_for("ssd", lambda d: d["Status"] in ("FINISHED", "ERROR"), 60)
        assert done["Status"] == "FINISHED", done
        assert done["Stats"]["FramesDecoded"] == 80
        assert 19 <= done["Stats"]["FramesAnalysed"] <= 21
        assert done["Stats"]["Events"] >= 4
        deadline = time.monotonic() + 10
        while len(receiver.for_task("ssd")) < done["Stats"]["Events"]:
            assert time.monotonic() < deadline, "events not delivered"
            time.sleep(0.1)
        for event in receiver.for_task("ssd"):
            assert event["EngineID"] == "ssd-engine"
            assert event["Objects"] and all(o["Type"] == "person" for o in event["Objects"])
            assert event["Snapshot"]
    finally:
        engine.stop()


def test_the_package_carries_the_model_and_runs_it_from_its_own_folder(
    ssdlite_model: Path, tmp_path: Path
) -> None:
    package, _ = build_reference_package(tmp_path / "out", "people-ssd", "--detector", "ssdlite")
    with tarfile.open(package) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "pkg", filter="data")
    packed_names = {
        "engine/models/ssdlite_pedestrian.onnx",
        "engine/models/ssdlite_pedestrian.LICENSE",
    }
    assert packed_names <= names
    packed = tmp_path / "pkg" / "engine" / "models" / "ssdlite_pedestrian.onnx"
    assert packed.read_bytes() == ssdlite_model.read_bytes()
    document = yaml.safe_load((tmp_path / "pkg" / "algo.yaml").read_text())
    env = {e["Name"]: e["Value"] for e in document["AlgoRuntime"]["Env"]}
    assert env["ENGINE_DETECTOR"] == "ssdlite"
    assert env["ENGINE_DETECTOR_THREADS"] == "1"
    assert "SSDLite" in document["Description"]
    quota = document["AlgoRuntime"]["Xpu"][0]["Capacities"]["Stream_Video_Quota"]
    assert quota == 4 * (os.cpu_count() or 1)
    # started from the unpacked folder as the local runtime does: the model is
    # found next to the engine's sources, no ENGINE_MODEL_PATH needed
    engine = start_engine(
        tmp_path / "pkg.log", cwd=tmp_path / "pkg", module="engine", ENGINE_DETECTOR="ssdlite"
    )
    try:
        assert engine.ok("GET", "/Health")["Detector"] == "ssdlite"
    finally:
        engine.stop()


def test_the_package_build_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    for form in ("artifact", "image"):
        with pytest.raises(CommandError, match=r"no model at .*fetch-detector\.sh"):
            build_reference_package(
                tmp_path,
                f"x-{form}",
                "--detector",
                "ssdlite",
                "--model",
                str(tmp_path / "none.onnx"),
                form=form,
            )
    assert not list(tmp_path.glob("*.tar.gz*"))
