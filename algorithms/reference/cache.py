"""Where the build machine keeps what the reference packages are made from
(no Django here: benchmarks and tools import it too)."""

from __future__ import annotations

import os
from pathlib import Path

from algorithms.reference.engine.detector import SSDLITE_MODEL

ROOT = Path(__file__).resolve().parents[2]


def default_model() -> Path:
    """The SSDLite model scripts/fetch-detector.sh converts and caches."""
    cache = Path(os.environ.get("FACILITY_CACHE_DIR", ".cache"))
    return (cache if cache.is_absolute() else ROOT / cache) / "models" / SSDLITE_MODEL
