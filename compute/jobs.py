"""Background entry points: the sampler of the local node and the sample
table's upkeep. Both are safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from compute import actions
from compute.probes import Probe, probes_for_local_node, read_all

log = logging.getLogger(__name__)

# Probes live as long as the process: the host probe measures CPU use since
# its previous read, and NVML is initialised once.
_probes: list[Probe] | None = None


def local_probes() -> list[Probe]:
    global _probes
    if _probes is None:
        _probes = probes_for_local_node()
    return _probes


def close_probes() -> None:
    global _probes
    for probe in _probes or []:
        probe.close()
    _probes = None


def sample_local_node(force: bool = False) -> bool:
    """Read the local node and store a sample. Skips (returns False) when a
    sample newer than half the cadence exists, so the minute schedule and
    the `run_sampler` loop can run side by side without doubling rows."""
    node = actions.ensure_local_node()
    interval_s = settings.FACILITY_SAMPLE_INTERVAL_S
    if not force and node.last_seen_at is not None:
        if timezone.now() - node.last_seen_at < timedelta(seconds=interval_s / 2):
            return False
    reading = read_all(local_probes())
    actions.record_reading(node, reading, period_s=int(interval_s))
    return True


def downsample_and_prune() -> dict[str, int]:
    result = actions.downsample_and_prune()
    log.info("samples: %(pruned)s pruned, %(merged_into)s merged rows written", result)
    return result
