"""Engine settings, all from environment variables (documented in
docs/engine-interface.md). Bad values fail loudly at start."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    pass


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value if value else default


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = _get(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = _get(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not value >= minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class EngineConfig:
    host: str = "127.0.0.1"
    port: int = 8750
    capacity: int = 4
    engine_id: str = ""
    event_sink_url: str = ""
    event_sink_token: str = ""
    analysis_fps: float = 5.0
    file_speed: float = 1.0
    detector: str = "hog"
    detect_height: int = 800
    hog_scale: float = 1.15
    model_path: str = ""
    detector_threads: int = 1
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    reconnect_max_s: float = 10.0
    event_queue: int = 256
    event_attempts: int = 4
    snapshot_max_width: int = 1920
    snapshot_quality: int = 85
    malloc_trim_s: float = 30.0
    malloc_arenas: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        env = os.environ if env is None else env
        return cls(
            host=_get(env, "ENGINE_HOST", "127.0.0.1"),
            port=_int(env, "ENGINE_PORT", 8750, 0),
            capacity=_int(env, "ENGINE_CAPACITY", 4, 1),
            engine_id=_get(env, "ENGINE_ID", socket.gethostname()),
            event_sink_url=_get(env, "EVENT_SINK_URL", ""),
            event_sink_token=_get(env, "EVENT_SINK_TOKEN", ""),
            analysis_fps=_float(env, "ENGINE_ANALYSIS_FPS", 5.0, 0.01),
            file_speed=_float(env, "ENGINE_FILE_SPEED", 1.0, 0.0),
            detector=_get(env, "ENGINE_DETECTOR", "hog"),
            detect_height=_int(env, "ENGINE_DETECT_HEIGHT", 800, 0),
            hog_scale=_float(env, "ENGINE_HOG_SCALE", 1.15, 1.01),
            model_path=_get(env, "ENGINE_MODEL_PATH", ""),
            detector_threads=_int(env, "ENGINE_DETECTOR_THREADS", 1, 1),
            open_timeout_s=_float(env, "ENGINE_OPEN_TIMEOUT_S", 10.0, 0.1),
            read_timeout_s=_float(env, "ENGINE_READ_TIMEOUT_S", 10.0, 0.1),
            reconnect_max_s=_float(env, "ENGINE_RECONNECT_MAX_S", 10.0, 0.1),
            event_queue=_int(env, "ENGINE_EVENT_QUEUE", 256, 1),
            event_attempts=_int(env, "ENGINE_EVENT_ATTEMPTS", 4, 1),
            snapshot_max_width=_int(env, "ENGINE_SNAPSHOT_MAX_WIDTH", 1920, 64),
            snapshot_quality=_int(env, "ENGINE_SNAPSHOT_QUALITY", 85, 1),
            malloc_trim_s=_float(env, "ENGINE_MALLOC_TRIM_S", 30.0, 0.0),
            malloc_arenas=_int(env, "ENGINE_MALLOC_ARENAS", 2, 0),
        )
