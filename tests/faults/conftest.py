from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _db_for_all() -> None:
    """The facility under test has its own database; this process must hold
    no connection that a database restart would break."""
