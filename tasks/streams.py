"""Stream sources: what an engine opens for a task's stream URL.

rtsp/rtmp/http/file URLs go to the engine as the platform sent them. A scheme
whose video reaches the facility some other way (`gb28181://`: the camera
streams only to the SIP platform that INVITEd it) is served by a source that
its app registers here when Django starts; the task keeps the URL it was
given, and only what is sent to the engine is rewritten."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class StreamSource:
    # the URL the engine opens instead of the task's
    engine_url: Callable[[str], str]
    # an engine's failure reason, said in the source's own terms
    explain: Callable[[str, str], str]


_SOURCES: dict[str, StreamSource] = {}


def register(scheme: str, source: StreamSource) -> None:
    _SOURCES[scheme.lower()] = source


def source_for(url: str) -> StreamSource | None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return _SOURCES.get(scheme)


def engine_task_info(task_info: dict[str, Any]) -> dict[str, Any]:
    """TaskInfo as an engine receives it: the stored one, with a URL of a
    registered scheme pointed where the engine can open it."""
    try:
        url = task_info["StreamOptions"]["VideoStreamOptions"]["Url"]
    except (KeyError, TypeError):
        return task_info
    source = source_for(url) if isinstance(url, str) else None
    if source is None:
        return task_info
    info = copy.deepcopy(task_info)
    info["StreamOptions"]["VideoStreamOptions"]["Url"] = source.engine_url(url)
    return info


def explain(stream_url: str, reason: str) -> str:
    source = source_for(stream_url)
    return source.explain(stream_url, reason) if source is not None and reason else reason
