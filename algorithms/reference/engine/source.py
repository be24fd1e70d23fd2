"""Opening video sources with PyAV, and failures turned into machine-readable reasons."""

from __future__ import annotations

import errno
import os
from typing import Any
from urllib.parse import unquote, urlsplit

import av

from .config import EngineConfig
from .rules import url_scheme


class SourceError(Exception):
    """A source could not be opened or read; ``str()`` is the task's Reason."""


def file_path(url: str) -> str:
    if url.lower().startswith("file://"):
        parts = urlsplit(url)
        return unquote(parts.path if not parts.netloc else f"//{parts.netloc}{parts.path}")
    return url


def reason_for(exc: BaseException, *, opening: bool) -> str:
    """Short, stable text for a failure: '<what>: <why>'."""
    what = "stream unreachable" if opening else "stream read failed"
    if isinstance(exc, SourceError):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return f"{what}: connection refused"
    if isinstance(exc, ConnectionResetError):
        return f"{what}: connection reset"
    if isinstance(exc, (TimeoutError, av.error.ExitError)):
        return f"{what}: timed out"
    if isinstance(exc, av.error.HTTPError):
        return f"{what}: server answered {exc.strerror}"
    if isinstance(exc, FileNotFoundError):
        return f"{what}: not found"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"{what}: host unreachable"
        if exc.errno == errno.ETIMEDOUT:
            return f"{what}: timed out"
        text = exc.strerror or str(exc)
        return f"{what}: {text}"
    return f"{what}: {type(exc).__name__}: {exc}"


def open_source(url: str, config: EngineConfig) -> Any:
    """Open ``url`` and return a PyAV input container with a video stream."""
    scheme = url_scheme(url)
    if scheme == "file":
        path = file_path(url)
        if not os.path.isfile(path):
            raise SourceError(f"file not found: {path}")
        try:
            container = av.open(path)
        except av.error.FFmpegError as exc:
            raise SourceError(f"file unreadable: {exc.strerror or exc}") from exc
    else:
        timeouts = (config.open_timeout_s, config.read_timeout_s)
        io_us = str(int(config.read_timeout_s * 1_000_000))
        if scheme in ("rtsp", "rtsps"):
            try:
                container = av.open(
                    url, options={"rtsp_transport": "tcp", "timeout": io_us}, timeout=timeouts
                )
            except av.error.FFmpegError as exc:
                # 461 Unsupported Transport: the server only streams over UDP
                if "461" not in str(exc) and "transport" not in str(exc).lower():
                    raise
                container = av.open(
                    url, options={"rtsp_transport": "udp", "timeout": io_us}, timeout=timeouts
                )
        else:
            container = av.open(url, options={"rw_timeout": io_us}, timeout=timeouts)
    if not container.streams.video:
        container.close()
        raise SourceError("no video stream in source")
    return container


def is_live(url: str, container: Any) -> bool:
    """rtsp/rtmp are live; http(s) is live unless the container knows its
    duration (a file served over HTTP); files are finite."""
    scheme = url_scheme(url)
    if scheme == "file":
        return False
    if scheme in ("http", "https"):
        return not (container.duration and container.duration > 0)
    return True
