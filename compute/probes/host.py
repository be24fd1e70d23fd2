"""CPU, memory, disk and identity of this machine, through psutil."""

from __future__ import annotations

import platform
import socket
from pathlib import Path

import psutil

from compute.choices import CpuArch
from compute.probes import GIB, Reading

_ARM_MACHINES = ("arm", "aarch64")


def cpu_arch() -> str:
    machine = platform.machine().lower()
    return CpuArch.ARM.value if machine.startswith(_ARM_MACHINES) else CpuArch.X86.value


def os_name() -> str:
    """e.g. "debian 12" or "ubuntu 22.04"; the kernel name where no
    os-release exists. At most 20 characters (表H.2 OS)."""
    try:
        release = platform.freedesktop_os_release()
        text = f"{release.get('ID', '')} {release.get('VERSION_ID', '')}".strip()
    except OSError:
        text = f"{platform.system()} {platform.release()}".strip()
    return text[:20]


def primary_ip() -> str:
    """The address other machines reach this one by: the source address of
    the default route. Connecting a UDP socket sends nothing."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


class HostProbe:
    name = "host"

    def __init__(self, disk_path: Path | str = "/") -> None:
        self.disk_path = str(disk_path)
        # cpu_percent(None) measures since its previous call: prime it so the
        # first read covers the time since construction, not since boot.
        psutil.cpu_percent(interval=None)
        self._primed = False

    def inventory(self) -> Reading:
        """Identity and totals only: cheap, measures nothing over time."""
        return Reading(
            hostname=socket.gethostname(),
            ip=primary_ip(),
            cpu_arch=cpu_arch(),
            os=os_name(),
            cpu_cores=psutil.cpu_count(logical=True) or 1,
            memory_gb=psutil.virtual_memory().total / GIB,
            disk_gb=psutil.disk_usage(self.disk_path).total / GIB,
        )

    def read(self) -> Reading:
        if not self._primed:
            # a first read right after priming would cover ~0 s: measure briefly
            cpu_percent = psutil.cpu_percent(interval=0.2)
            self._primed = True
        else:
            cpu_percent = psutil.cpu_percent(interval=None)
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self.disk_path)
        reading = self.inventory()
        reading.memory_gb = memory.total / GIB
        reading.disk_gb = disk.total / GIB
        return reading.merge(
            Reading(
                cpu_utilization=cpu_percent / 100.0,
                # total - available: what programs hold, page cache excluded
                memory_used_gb=(memory.total - memory.available) / GIB,
                disk_used_gb=disk.used / GIB,
            )
        )

    def close(self) -> None:
        pass
