"""Small helpers shared by the runtime adapters (no engine client imports)."""

from __future__ import annotations

import re
import signal

from .base import LABEL_MANAGED, LABEL_REPLICA, ReplicaSpec, RuntimeError_

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_name(name: str) -> None:
    """Replica names are DNS-label-like: [a-z0-9-], at most 63 characters."""
    if not _NAME_RE.match(name):
        raise RuntimeError_(
            f"invalid replica name {name!r}: use a-z, 0-9 and '-', at most 63 characters, "
            "starting and ending with a letter or digit"
        )


def managed_labels(spec: ReplicaSpec) -> dict[str, str]:
    """The spec's labels plus the two every replica must carry for re-adoption
    (LABEL_MANAGED=1 and LABEL_REPLICA=<name>), unless the caller set them."""
    labels = dict(spec.labels)
    labels.setdefault(LABEL_MANAGED, "1")
    labels.setdefault(LABEL_REPLICA, spec.name)
    return labels


def describe_exit(code: int | None) -> str:
    """Operator text for an exit status: 'exit code 1', 'exit code 137 (SIGKILL)'.
    Statuses above 128 are the shells' and docker-init's 128+signal convention;
    negative ones are Python's for a process killed by a signal."""
    if code is None:
        return "exit code unknown"
    sig = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else 0
    if sig:
        try:
            return f"exit code {code} ({signal.Signals(sig).name})"
        except ValueError:
            return f"exit code {code} (signal {sig})"
    return f"exit code {code}"
