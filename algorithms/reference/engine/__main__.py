"""Run the reference engine: ``python -m algorithms.reference.engine``.

Settings come from environment variables (docs/engine-interface.md). SIGTERM
or SIGINT stops every task, flushes queued events for up to a second and
exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from . import __version__, memory
from .config import ConfigError, EngineConfig
from .detector import DetectorError
from .server import Engine, make_server

log = logging.getLogger("engine")


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("ENGINE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = EngineConfig.from_env()
    except ConfigError as exc:
        log.error("bad setting: %s", exc)
        return 2
    # before any thread of ours allocates (memory.py says why)
    memory.limit_arenas(config.malloc_arenas)
    try:
        engine = Engine(config)
    except ValueError as exc:
        log.error("bad setting: %s", exc)
        return 2
    except DetectorError as exc:
        log.error("cannot build the detector: %s", exc)
        return 2
    try:
        server = make_server(engine)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        return 3
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    # the first line on stdout tells a parent which port was bound (ENGINE_PORT=0)
    print(f"ENGINE READY http://{host}:{port} version={__version__}", flush=True)
    log.info(
        "engine %s listening on %s:%s (capacity %d, %.3g fps analysed, detector %s)",
        config.engine_id,
        host,
        port,
        config.capacity,
        config.analysis_fps,
        config.detector,
    )
    next_trim = time.monotonic() + config.malloc_trim_s
    while not stop.wait(timeout=1.0):
        if config.malloc_trim_s > 0 and time.monotonic() >= next_trim:
            memory.trim()
            next_trim = time.monotonic() + config.malloc_trim_s
    log.info("stopping")
    engine.shutdown(join_s=2.0)
    server.shutdown()
    server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
