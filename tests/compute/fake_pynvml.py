"""A fake of the pynvml module, at the boundary the NVML probe imports.

It answers the NVML calls the probe makes from a list of FakeCard, so the
probe's real code path runs without a GPU. Not a GPU simulator: only the
calls and shapes compute/probes/nvml.py uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

GIB = 1024**3


class NVMLError(Exception):
    pass


@dataclass
class FakeCard:
    name: str = "Tesla T4"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total: int = 16 * GIB
    memory_used: int = 2 * GIB
    utilization_percent: int = 37
    compute_processes: list[tuple[int, int | None]] = field(default_factory=list)
    graphics_processes: list[tuple[int, int | None]] = field(default_factory=list)
    utilization_supported: bool = True


class FakePynvml:
    """Stands in for the `pynvml` module object."""

    NVMLError = NVMLError

    def __init__(self, cards: list[FakeCard] | None = None, init_error: str = "") -> None:
        self.cards = cards or []
        self.init_error = init_error
        self.initialised = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeCard:
        return self.cards[index]

    def nvmlDeviceGetName(self, card: FakeCard) -> bytes:
        return card.name.encode()  # older bindings return bytes

    def nvmlDeviceGetUUID(self, card: FakeCard) -> str:
        return card.uuid

    def nvmlDeviceGetMemoryInfo(self, card: FakeCard) -> Any:
        return SimpleNamespace(
            total=card.memory_total,
            used=card.memory_used,
            free=card.memory_total - card.memory_used,
        )

    def nvmlDeviceGetUtilizationRates(self, card: FakeCard) -> Any:
        if not card.utilization_supported:
            raise NVMLError("Not Supported")
        return SimpleNamespace(gpu=card.utilization_percent, memory=0)

    def nvmlDeviceGetComputeRunningProcesses(self, card: FakeCard) -> list[Any]:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in card.compute_processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, card: FakeCard) -> list[Any]:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in card.graphics_processes]
