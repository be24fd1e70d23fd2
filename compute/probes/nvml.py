"""NVIDIA cards through NVML. The only module of the facility that imports
pynvml (DESIGN.md §4); tests replace the module object `pynvml` below with a
fake (tests/compute/fake_pynvml.py).

Without the library, the driver or any card the probe reports no cards and
says why in `xpu_note`; it never raises for that."""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from types import ModuleType
from typing import Any

from compute.probes import GIB, CardReading, Reading
from compute.probes.owners import process_owner

log = logging.getLogger(__name__)

with warnings.catch_warnings():
    # the `pynvml` distribution warns that it is a shim of nvidia-ml-py; the
    # module it provides is the same
    warnings.simplefilter("ignore", FutureWarning)
    try:
        import pynvml as _pynvml

        pynvml: ModuleType | None = _pynvml
    except ImportError:  # pragma: no cover - the package is a requirement
        pynvml = None

_VENDOR_WORDS = {"NVIDIA", "TESLA", "GEFORCE", "QUADRO"}
# variant words that do not change what an algorithm package asks for
_VARIANT = re.compile(r"^(\d+GB|PCIE|SXM\d*|HBM\d*[E]?|NVL|MIG)$")


def xpu_type_from_name(name: str) -> str:
    """NVML's marketing name → the standard's XpuType (at most 20 chars):
    "Tesla T4" → NVIDIA_T4, "NVIDIA H200" → NVIDIA_H200,
    "NVIDIA A100-SXM4-80GB" → NVIDIA_A100, "NVIDIA GeForce RTX 2070" →
    NVIDIA_RTX_2070."""
    words = []
    for word in name.upper().replace("_", " ").split():
        if word in _VENDOR_WORDS:
            continue
        head = word.split("-", 1)[0]
        if not head or _VARIANT.match(head):
            continue
        words.append(head)
    model = "_".join(words) or "GPU"
    return f"NVIDIA_{model}"[:20]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlProbe:
    name = "nvml"

    def __init__(self) -> None:
        self._initialised = False
        self._unavailable = ""

    def _init(self) -> bool:
        if self._initialised:
            return True
        if pynvml is None:
            self._unavailable = "pynvml is not installed"
            return False
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            # no driver or no library: a CPU-only node, said once per probe
            self._unavailable = f"NVML unavailable: {error}"
            return False
        self._initialised = True
        return True

    def read(self) -> Reading:
        if not self._init():
            return Reading(cards=[], xpu_note=self._unavailable)
        assert pynvml is not None
        try:
            count = pynvml.nvmlDeviceGetCount()
            cards = [self._read_card(index) for index in range(count)]
        except pynvml.NVMLError as error:
            log.warning("NVML read failed: %s", error)
            return Reading(cards=[], xpu_note=f"NVML read failed: {error}")
        return Reading(cards=cards, xpu_note="" if cards else "NVML found no cards")

    def _read_card(self, index: int) -> CardReading:
        assert pynvml is not None
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        try:
            utilization = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
        except pynvml.NVMLError:
            # MIG instances and some boards do not report utilisation
            utilization = 0.0
        return CardReading(
            index=index,
            uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
            xpu_type=xpu_type_from_name(_text(pynvml.nvmlDeviceGetName(handle))),
            memory_gb=memory.total / GIB,
            memory_used_gb=memory.used / GIB,
            utilization=utilization,
            processes=self._processes(handle),
        )

    def _processes(self, handle: Any) -> list[dict[str, Any]]:
        """GPU memory per process, with what identifies the process's owner
        (probes/owners.py) so the monitors can map it to a service later."""
        assert pynvml is not None
        used: dict[int, float] = {}
        for query in (
            pynvml.nvmlDeviceGetComputeRunningProcesses,
            pynvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            try:
                processes = query(handle)
            except pynvml.NVMLError:
                continue
            for process in processes:
                # usedGpuMemory is None where the driver hides it (containers, WDDM)
                memory = getattr(process, "usedGpuMemory", None) or 0
                used[int(process.pid)] = max(used.get(int(process.pid), 0.0), memory / GIB)
        return [
            {"Pid": pid, "MemoryUsedGB": gb, **process_owner(pid)}
            for pid, gb in sorted(used.items())
        ]

    def close(self) -> None:
        if self._initialised and pynvml is not None:
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()
            self._initialised = False
