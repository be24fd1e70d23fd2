from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compute import jobs
from compute.probes import nvml
from tests.compute.fake_pynvml import FakeCard, FakePynvml


@pytest.fixture(autouse=True)
def _no_real_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests see no GPU unless they install fake cards: results must not
    depend on the machine the suite runs on (the real-GPU test opts out)."""
    monkeypatch.setattr(nvml, "pynvml", FakePynvml(init_error="NVML Shared Library Not Found"))
    jobs.close_probes()
    yield
    jobs.close_probes()


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakePynvml]:
    def install(*cards: FakeCard) -> FakePynvml:
        fake = FakePynvml(list(cards))
        monkeypatch.setattr(nvml, "pynvml", fake)
        jobs.close_probes()
        return fake

    return install


@pytest.fixture
def compute_settings(settings: Any) -> Any:
    settings.FACILITY_CLUSTER_CODE = "cluster-1"
    settings.FACILITY_NODE_OFFLINE_AFTER_S = 60
    settings.FACILITY_TREND_WINDOW_S = 3600
    settings.FACILITY_TREND_POINTS = 60
    return settings
