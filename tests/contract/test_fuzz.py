"""Hostile input against the published contract: schemathesis generates
requests (valid and invalid) for every operation of /api/schema/ and checks
that no answer is a 5xx and every answer matches the schema (and so carries
the envelope). Jobs never run here (manual queue): nothing leaves the
machine whatever URLs the generator invents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

EXAMPLES_PER_OPERATION = 15

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Requests go through the WSGI app, not Django's test client: like the
    test client, keep Django from closing the connection that holds the
    test's transaction at each request's start and end."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _nothing_runs_in_the_background(settings) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    settings.RATE_PER_MINUTE = 0


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_survives_generated_input(case, platform_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {platform_token}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
