"""Who a GPU process belongs to, read when the sample is taken.

NVML names processes by host pid only. To let the status interfaces map a
process to the algorithm service that owns it later, from stored samples
alone, the probe records with each process what identifies its owner:

- `Started`: the process's start time (Unix seconds, 2 decimals), so a
  local replica's handle ("pid:starttime") is not matched by a reused pid;
- `Parents`: the pids of its ancestors (nearest first, at most 16, init
  left out), so workers forked by a local replica's engine count as its;
- `Container`: the 64-hex id of the Docker container it runs in, from
  /proc/<pid>/cgroup (cgroup v1 `/docker/<id>`, v2 `docker-<id>.scope`).

A process that is gone (or hidden) by the time it is looked at gets none of
these: it stays in the sample with its memory, owned by no service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psutil

MAX_PARENTS = 16
_CONTAINER = re.compile(r"(?:docker|containerd|cri-containerd|libpod|crio)[-/]([0-9a-f]{64})\b")


def container_of(pid: int, proc_root: str = "/proc") -> str:
    """The Docker (or containerd/podman) container id `pid` runs in, or ""."""
    try:
        text = Path(proc_root, str(pid), "cgroup").read_text()
    except OSError:
        return ""
    match = _CONTAINER.search(text)
    return match.group(1) if match else ""


def process_owner(pid: int) -> dict[str, Any]:
    """`Started`, `Parents` and `Container` of a live process (see above)."""
    try:
        process = psutil.Process(pid)
        started = round(process.create_time(), 2)
        parents = [parent.pid for parent in process.parents() if parent.pid > 1]
    except (psutil.Error, OSError):
        return {}
    owner: dict[str, Any] = {"Started": started}
    if parents:
        owner["Parents"] = parents[:MAX_PARENTS]
    container = container_of(pid)
    if container:
        owner["Container"] = container
    return owner
