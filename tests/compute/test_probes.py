from __future__ import annotations

import importlib
import warnings

import psutil
import pytest

from compute.probes import GIB, read_all
from compute.probes.host import HostProbe
from compute.probes.nvml import NvmlProbe, xpu_type_from_name
from tests.compute.fake_pynvml import FakeCard


@pytest.mark.parametrize(
    ("name", "xpu_type"),
    [
        ("Tesla T4", "NVIDIA_T4"),
        ("NVIDIA A2", "NVIDIA_A2"),
        ("NVIDIA H200", "NVIDIA_H200"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA_A100"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA_H100"),
        ("NVIDIA GeForce RTX 2070", "NVIDIA_RTX_2070"),
        ("NVIDIA L40S", "NVIDIA_L40S"),
    ],
)
def test_card_names_map_to_the_standards_xpu_type(name: str, xpu_type: str) -> None:
    assert xpu_type_from_name(name) == xpu_type


def test_nvml_probe_reads_every_card_through_pynvml(fake_gpus) -> None:
    fake = fake_gpus(
        FakeCard(
            name="Tesla T4",
            uuid="GPU-a",
            memory_total=16 * GIB,
            memory_used=4 * GIB,
            utilization_percent=50,
            compute_processes=[(100, 1 * GIB), (200, None)],
            graphics_processes=[(100, 1 * GIB)],
        ),
        FakeCard(
            name="NVIDIA A2", uuid="GPU-b", memory_total=15 * GIB, utilization_supported=False
        ),
    )
    probe = NvmlProbe()
    reading = probe.read()
    probe.close()

    first, second = reading.cards
    assert (first.index, first.uuid, first.xpu_type) == (0, "GPU-a", "NVIDIA_T4")
    assert first.memory_gb == pytest.approx(16) and first.memory_used_gb == pytest.approx(4)
    assert first.utilization == pytest.approx(0.5)
    # a process listed as compute and graphics counts once; hidden memory is 0
    # (with what identifies each one's owner when it runs here: probes/owners.py)
    assert [(p["Pid"], p["MemoryUsedGB"]) for p in first.processes] == [(100, 1.0), (200, 0.0)]
    assert second.xpu_type == "NVIDIA_A2" and second.utilization == 0.0
    assert reading.xpu_note == ""
    assert fake.initialised == 1 and fake.shutdowns == 1


def test_without_nvml_the_node_has_no_cards_and_says_why() -> None:
    reading = NvmlProbe().read()
    assert reading.cards == []
    assert "NVML unavailable" in reading.xpu_note


def test_nvml_with_no_cards_says_so(fake_gpus) -> None:
    fake_gpus()
    reading = NvmlProbe().read()
    assert reading.cards == [] and reading.xpu_note == "NVML found no cards"


def test_host_probe_agrees_with_psutil() -> None:
    reading = HostProbe("/").read()
    memory = psutil.virtual_memory()
    assert reading.cpu_cores == psutil.cpu_count(logical=True)
    assert reading.memory_gb == pytest.approx(memory.total / GIB)
    assert reading.memory_used_gb == pytest.approx((memory.total - memory.available) / GIB, abs=0.5)
    assert reading.disk_gb == pytest.approx(psutil.disk_usage("/").total / GIB)
    assert reading.disk_used_gb == pytest.approx(psutil.disk_usage("/").used / GIB, abs=1)
    assert 0 <= reading.cpu_utilization <= 1
    assert reading.cpu_arch in ("x86", "arm")
    assert reading.hostname and reading.ip and reading.os


def test_readings_of_several_probes_merge() -> None:
    reading = read_all([HostProbe("/"), NvmlProbe()])
    assert reading.cpu_cores and reading.cards == []
    assert reading.xpu_note.startswith("NVML unavailable")


def _real_pynvml():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = importlib.import_module("pynvml")
    try:
        module.nvmlInit()
    except Exception:
        return None
    module.nvmlShutdown()
    return module


def test_nvml_probe_on_a_real_gpu(monkeypatch, capsys) -> None:
    """Runs only where an NVIDIA driver answers; prints what it saw."""
    module = _real_pynvml()
    if module is None:
        pytest.skip("no NVIDIA driver on this machine")
    from compute.probes import nvml

    monkeypatch.setattr(nvml, "pynvml", module)
    probe = NvmlProbe()
    reading = probe.read()
    probe.close()
    with capsys.disabled():
        for card in reading.cards:
            print(f"\nreal NVML: {card}")
    assert reading.cards, reading.xpu_note
    for card in reading.cards:
        assert card.xpu_type.startswith("NVIDIA_") and card.memory_gb > 0
        assert 0 <= card.utilization <= 1
