"""Result sinks: where events go. One small interface, a registry by URL
scheme; GA/T 1400 view libraries join here later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None
    error: str = ""


class ResultSink(Protocol):
    def send(self, target: str, document: dict[str, Any], event_key: str) -> SendResult: ...


def sink_for(target: str) -> ResultSink:
    from tasks.sinks.gat1400 import Gat1400Sink, is_viid
    from tasks.sinks.http import HttpSink

    if is_viid(target):  # GA/T 1400 view library (docs/gat1400.md)
        return Gat1400Sink()
    return HttpSink()
