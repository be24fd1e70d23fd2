"""Build the reference engine (algorithms/reference/engine) into a real
algorithm package that is pushed like any vendor's (POST /CAP/AlgoFilePackages).

    manage.py build_reference_package --form artifact --out DIR [--id ID]
    manage.py build_reference_package --form image --out DIR [--id ID]

artifact: a tar.gz with algo.yaml (Bin.Type artifact, Bin.LocalUri engine) and
a copy of the engine folder; the `local` runtime runs `python3 -m engine` in
the unpacked package, resolving the bare `python3` on the node at start to
FACILITY_ENGINE_PYTHON (default: the facility's own Python, which has the
engine's dependencies: av, opencv-python-headless<5, numpy). The package holds
no path of the build machine, so it runs on any node. `--python PATH` writes
that interpreter into Cmd instead (then the package only runs where PATH
exists).

image: a tar.gz with algo.yaml (Bin.Type image, Bin.LocalUri image.tar) and
image.tar, the `docker save` of an image built FROM facility/engine-python:bookworm
(Debian's python3-av/-opencv/-numpy; scripts/build-base-image.sh engine) with
the legacy builder; no registry is used. The `docker` runtime loads it and runs
`python3 -m engine` in the container.

Prints the package path, its MD5 and the suggested AlgoFilePackageID.
See docs/reference-algorithm.md.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

import algorithms.reference
from algorithms.reference.cache import SSDLITE_MODEL, default_model
from algorithms.reference.engine import __version__ as ENGINE_VERSION
from algorithms.reference.engine.detector import MODELS_DIR
from facility.commands import TranslatedCommand

REFERENCE_DIR = Path(algorithms.reference.__file__).resolve().parent
ENGINE_DIR = REFERENCE_DIR / "engine"
BASE_IMAGE = "facility/engine-python:bookworm"
IMAGE_REPO = "facility/reference-engine"
IMAGE_WORKDIR = "/opt/reference"
IMAGE_FILE = "image.tar"
# The artifact's interpreter: a name the local runtime resolves on the node
# (services/runtime/local.py), so the package names no path of this machine.
NEUTRAL_PYTHON = "python3"

# Variables the package declares (the platform may set them per service,
# anything else is refused). ENGINE_PORT/HOST/ID/CAPACITY and EVENT_SINK_* are
# set by the facility for every replica.
DECLARED_ENV: tuple[tuple[str, str], ...] = (
    ("ENGINE_ANALYSIS_FPS", "5"),
    ("ENGINE_FILE_SPEED", "1"),
    ("ENGINE_DETECTOR", "hog"),
    ("ENGINE_DETECT_HEIGHT", "800"),
    ("ENGINE_HOG_SCALE", "1.15"),
    ("ENGINE_DETECTOR_THREADS", "1"),
    ("ENGINE_OPEN_TIMEOUT_S", "10"),
    ("ENGINE_READ_TIMEOUT_S", "10"),
    ("ENGINE_RECONNECT_MAX_S", "10"),
    ("ENGINE_EVENT_QUEUE", "256"),
    ("ENGINE_EVENT_ATTEMPTS", "4"),
    ("ENGINE_SNAPSHOT_MAX_WIDTH", "1920"),
    ("ENGINE_SNAPSHOT_QUALITY", "85"),
    ("ENGINE_LOG_LEVEL", "INFO"),
    ("ENGINE_MALLOC_ARENAS", "2"),
    ("ENGINE_MALLOC_TRIM_S", "30"),
)

# Debian bookworm's python3 (3.11) looks here for what its packages lack
IMAGE_SITE = "/usr/local/lib/python3.11/dist-packages"
IMAGE_PYTHON = (3, 11)

DOCKERFILE = f"""\
FROM {{base}}
COPY engine {IMAGE_WORKDIR}/engine
{{extra}}WORKDIR {IMAGE_WORKDIR}
ENV PYTHONPATH={IMAGE_WORKDIR} PYTHONDONTWRITEBYTECODE=1
LABEL facility.reference.version="{{version}}" facility.reference.digest="{{digest}}"
CMD ["python3", "-m", "engine"]
"""


def engine_files() -> list[Path]:
    """The engine's source files (no caches), in a stable order."""
    return sorted(
        p
        for p in ENGINE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def engine_digest() -> str:
    """A digest of the engine's sources: names the build."""
    h = hashlib.sha256()
    for path in engine_files():
        h.update(path.relative_to(ENGINE_DIR).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


# The neural detector's model (scripts/fetch-detector.sh puts it there) and
# where the engine looks for it inside the package (engine/detector.py).
PACKAGED_MODELS = f"engine/{MODELS_DIR.name}"
DETECTOR_NAMES = {"hog": "OpenCV HOG", "ssdlite": "SSDLite-MobileNetV2 (onnxruntime)"}
# 1080p25 streams analysed at 5 fps per core (bench/results/bench_streams.md)
STREAMS_PER_CORE = {"hog": 1, "ssdlite": 4}


def default_streams(detector: str = "hog") -> int:
    """Stream_Video_Quota for this machine, from the measured streams per core:
    one 1080p25 stream analysed at 5 fps takes about 0.7 of a core with HOG and
    about a fifth of one with SSDLite (algorithms/reference/README.md)."""
    return max(1, os.cpu_count() or 1) * STREAMS_PER_CORE[detector]


def manifest(
    *,
    form: str,
    cmd: str,
    streams: int,
    local_uri: str,
    digest: str,
    images: int = 1,
    detector: str = "hog",
) -> dict[str, Any]:
    declared = [(n, detector if n == "ENGINE_DETECTOR" else v) for n, v in DECLARED_ENV]
    return {
        "Name": "reference-people",
        "Version": ENGINE_VERSION,
        "Author": "facility",
        "Description": (
            f"The facility's reference algorithm: people in areas ({DETECTOR_NAMES[detector]} "
            "on PyAV-decoded video), Areas/Masks/DurationThreshold/"
            f"RepeatAlarmIntervalThreshold, JPEG snapshots. {form} build, engine "
            f"sources {digest[:12]}."
        ),
        "Tags": ["person", "reference", "cpu"],
        "Bin": {"Type": form, "LocalUri": local_uri},
        "AlgoRuntime": {
            "Cmd": cmd,
            "Env": [{"Name": name, "Value": value} for name, value in declared],
            "Xpu": [
                {
                    "Vendor": "",
                    "Accelerator": "CPU",
                    "Quota": 0,
                    # Analyze_Quota: still images at once (POST /Images:analyze, images.py)
                    "Capacities": {"Stream_Video_Quota": streams, "Analyze_Quota": images},
                }
            ],
        },
    }


def build(form: str, out: Path, package_id: str, *extra: str) -> tuple[Path, str]:
    """Run this command in-process (tests, benchmarks): the package written and its MD5."""
    from django.core.management import call_command

    stdout = io.StringIO()
    call_command(
        "build_reference_package",
        "--form",
        form,
        "--out",
        str(out),
        "--id",
        package_id,
        *extra,
        stdout=stdout,
        stderr=io.StringIO(),
    )
    lines = dict(line.split(": ", 1) for line in stdout.getvalue().splitlines() if ": " in line)
    return Path(lines["package"]), lines["md5"]


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_engine(tar: tarfile.TarFile, prefix: str = "engine") -> None:
    for path in engine_files():
        _add_bytes(tar, f"{prefix}/{path.relative_to(ENGINE_DIR).as_posix()}", path.read_bytes())


def _docker(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    try:
        run = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CommandError(
            _("docker %(command)s: %(error)s") % {"command": args[0], "error": error}
        ) from None
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip()[-1500:]
        raise CommandError(
            _("docker %(command)s failed (%(code)d): %(output)s")
            % {"command": " ".join(args[:2]), "code": run.returncode, "output": tail}
        )
    return run


def onnxruntime_dir() -> Path:
    """The onnxruntime package of this environment (requirements.txt), which
    the image form copies next to Debian's Python: bookworm has no
    onnxruntime package, and the wheel's build runs on Debian's numpy 1.24."""
    import importlib.util

    if sys.version_info[:2] != IMAGE_PYTHON:
        raise CommandError(
            _(
                "--detector ssdlite --form image: this Python is %(this)s, the image's is "
                "%(image)s; build with a CPython %(image)s environment"
            )
            % {
                "this": ".".join(map(str, sys.version_info[:2])),
                "image": ".".join(map(str, IMAGE_PYTHON)),
            }
        )
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(_("--detector ssdlite: onnxruntime is not installed here"))
    return Path(next(iter(spec.submodule_search_locations)))


def build_image(base: str, tag: str, digest: str, model: Path | None = None) -> None:
    """docker build (legacy builder) of the engine image FROM `base`; with
    `model`, the SSDLite network and onnxruntime go into it too."""
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode:
        raise CommandError(
            _(
                "base image %(base)s is not in the Docker engine: run "
                "scripts/build-base-image.sh engine (builds it or loads it from .cache/images)"
            )
            % {"base": base}
        )
    with tempfile.TemporaryDirectory(prefix="reference-image-") as context:
        shutil.copytree(
            ENGINE_DIR, Path(context) / "engine", ignore=shutil.ignore_patterns("__pycache__")
        )
        extra = ""
        if model is not None:
            models = Path(context) / PACKAGED_MODELS
            models.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model, models / SSDLITE_MODEL)
            licence = model.with_suffix(".LICENSE")
            if licence.is_file():
                shutil.copyfile(licence, models / licence.name)
            shutil.copytree(
                onnxruntime_dir(),
                Path(context) / "onnxruntime",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            extra = f"COPY onnxruntime {IMAGE_SITE}/onnxruntime\n"
        (Path(context) / "Dockerfile").write_text(
            DOCKERFILE.format(base=base, version=ENGINE_VERSION, digest=digest, extra=extra)
        )
        _docker("build", "--quiet", "--tag", tag, context)


class Command(TranslatedCommand):
    help = gettext_noop(
        "Build the reference engine into an algorithm package (artifact or image form)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--form", choices=("artifact", "image"), required=True)
        parser.add_argument(
            "--out", required=True, help=gettext_noop("folder the package is written to")
        )
        parser.add_argument(
            "--id",
            default="",
            help=gettext_noop(
                "the package's name: file <out>/<id>.tar.gz and the suggested "
                "AlgoFilePackageID (default reference-people-<form>-<version>)"
            ),
        )
        parser.add_argument(
            "--streams",
            type=int,
            default=0,
            help=gettext_noop(
                "Capacities.Stream_Video_Quota (default: one 1080p stream per CPU core)"
            ),
        )
        parser.add_argument(
            "--python",
            default=NEUTRAL_PYTHON,
            help=gettext_noop(
                "artifact form: the Python in Cmd (needs av, opencv-python-headless<5, "
                "numpy); default %(default)r, which the local runtime resolves on the "
                "node (FACILITY_ENGINE_PYTHON, else the facility's own): a portable package"
            ),
        )
        parser.add_argument(
            "--images",
            type=int,
            default=1,
            help=gettext_noop(
                "Capacities.Analyze_Quota: images analysed at once (0: no image input)"
            ),
        )
        parser.add_argument(
            "--detector",
            choices=sorted(DETECTOR_NAMES),
            default="hog",
            help=gettext_noop(
                "the detector the package runs by default; ssdlite puts its model (and, "
                "in the image form, onnxruntime) into the package"
            ),
        )
        parser.add_argument(
            "--model",
            default="",
            help=gettext_noop(
                "--detector ssdlite: the ONNX model (default: the one scripts/fetch-detector.sh "
                "caches)"
            ),
        )
        parser.add_argument(
            "--base", default=BASE_IMAGE, help=gettext_noop("image form: the base image")
        )
        parser.add_argument(
            "--tag",
            default="",
            help=gettext_noop("image form: the image's tag (default derived from sources)"),
        )
        parser.add_argument(
            "--compress-level", type=int, default=1, choices=range(10), metavar="0-9"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        form: str = options["form"]
        out = Path(options["out"]).resolve()
        out.mkdir(parents=True, exist_ok=True)
        package_id = options["id"] or f"reference-people-{form}-{ENGINE_VERSION}"
        if not package_id.replace("-", "a").replace("_", "a").replace(".", "a").isalnum():
            raise CommandError(
                _("--id %(id)r: letters, digits, '-', '_' and '.' only") % {"id": package_id}
            )
        detector: str = options["detector"]
        model: Path | None = None
        if detector == "ssdlite":
            if form == "image":
                onnxruntime_dir()  # refused before anything is built
            model = Path(options["model"]) if options["model"] else default_model()
            if not model.is_file():
                raise CommandError(
                    _("--detector ssdlite: no model at %(path)s; run scripts/fetch-detector.sh")
                    % {"path": model}
                )
        streams = options["streams"] or default_streams(detector)
        digest = engine_digest()
        target = out / f"{package_id}.tar.gz"
        part = target.with_name(target.name + ".part")
        level = options["compress_level"]
        if form == "artifact":
            python = options["python"]
            neutral = python in (NEUTRAL_PYTHON, "python")  # resolved on the node, not here
            if not neutral and not Path(python).is_absolute() and shutil.which(python) is None:
                raise CommandError(_("--python %(python)s: not found") % {"python": python})
            document = manifest(
                form="artifact",
                cmd=f"{python} -m engine",
                streams=streams,
                images=max(0, options["images"]),
                local_uri="engine",
                digest=digest,
                detector=detector,
            )
            with tarfile.open(part, "w:gz", compresslevel=max(level, 6)) as tar:
                _add_bytes(tar, "algo.yaml", yaml.safe_dump(document, sort_keys=False).encode())
                _add_engine(tar)
                if model is not None:
                    _add_bytes(tar, f"{PACKAGED_MODELS}/{SSDLITE_MODEL}", model.read_bytes())
                    licence = model.with_suffix(".LICENSE")
                    if licence.is_file():
                        _add_bytes(tar, f"{PACKAGED_MODELS}/{licence.name}", licence.read_bytes())
        else:
            flavour = "" if detector == "hog" else f"{detector}-"
            tag = options["tag"] or f"{IMAGE_REPO}:{ENGINE_VERSION}-{flavour}{digest[:12]}"
            self.stderr.write(
                _("building %(tag)s FROM %(base)s") % {"tag": tag, "base": options["base"]}
            )
            build_image(options["base"], tag, digest, model)
            document = manifest(
                form="image",
                cmd="python3 -m engine",
                streams=streams,
                images=max(0, options["images"]),
                local_uri=IMAGE_FILE,
                digest=digest,
                detector=detector,
            )
            with tempfile.TemporaryDirectory(prefix="reference-save-", dir=out) as work:
                saved = Path(work) / IMAGE_FILE
                self.stderr.write(f"docker save {tag}")
                _docker("save", "--output", str(saved), tag)
                self.stderr.write(
                    _("packing %(mb).0f MB (gzip -%(level)s)")
                    % {"mb": saved.stat().st_size / 1e6, "level": level}
                )
                with tarfile.open(part, "w:gz", compresslevel=level) as tar:
                    _add_bytes(tar, "algo.yaml", yaml.safe_dump(document, sort_keys=False).encode())
                    tar.add(saved, arcname=IMAGE_FILE)
            self.stdout.write(f"image: {tag}")
        part.replace(target)
        # "key: value" lines that scripts and tests parse: the same in every language
        self.stdout.write(f"package: {target}")
        self.stdout.write(f"md5: {md5_of(target)}")
        self.stdout.write(f"id: {package_id}")
