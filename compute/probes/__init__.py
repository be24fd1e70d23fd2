"""Probes read a machine's inventory and current use. Each probe answers the
same small interface (`Probe`); `probes_for_local_node()` is the registry the
sampler and the node agent use. Only `nvml.py` imports pynvml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

GIB = 1024**3


@dataclass
class CardReading:
    index: int
    uuid: str
    xpu_type: str
    memory_gb: float
    memory_used_gb: float
    utilization: float  # ratio 0..1
    # GPU memory per process: [{"Pid": 123, "MemoryUsedGB": 0.5}], plus what
    # identifies its owner where known ("Started", "Parents", "Container":
    # probes/owners.py)
    processes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Reading:
    """What one probe saw. Fields a probe does not measure stay None/empty;
    `merge` combines the readings of several probes into one."""

    hostname: str | None = None
    ip: str | None = None
    cpu_arch: str | None = None
    os: str | None = None
    cpu_cores: int | None = None
    memory_gb: float | None = None
    disk_gb: float | None = None
    cpu_utilization: float | None = None
    memory_used_gb: float | None = None
    disk_used_gb: float | None = None
    cards: list[CardReading] | None = None
    # why no cards were reported (no NVML, no driver, disabled …)
    xpu_note: str = ""

    def merge(self, other: Reading) -> Reading:
        for name in self.__dataclass_fields__:
            value = getattr(other, name)
            if value not in (None, "") and getattr(self, name) in (None, ""):
                setattr(self, name, value)
        return self


class Probe(Protocol):
    name: str

    def read(self) -> Reading: ...

    def close(self) -> None: ...


def probes_for_local_node() -> list[Probe]:
    from django.conf import settings

    from compute.probes.host import HostProbe
    from compute.probes.nvml import NvmlProbe

    probes: list[Probe] = [HostProbe(settings.FACILITY_DISK_PATH)]
    if settings.FACILITY_NVML_ENABLED:
        probes.append(NvmlProbe())
    return probes


def read_all(probes: list[Probe]) -> Reading:
    reading = Reading()
    for probe in probes:
        reading.merge(probe.read())
    if reading.cards is None:
        reading.cards = []
        reading.xpu_note = reading.xpu_note or "no accelerator probe ran"
    return reading
