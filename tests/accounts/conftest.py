"""Fixtures shared by the accounts tests."""

import pytest

from gateway import services
from gateway.registry import registry
from gateway.upstream import close_pools
from tests.support.upstream import PathUpstream


@pytest.fixture
def gateway_service(db):
    """A gateway service in front of a live upstream: its proxied path."""
    registry.reset()
    upstream = PathUpstream("sessions")
    services.service_create(name="echo", instances=[upstream.url])
    yield "/api/echo/whoami"
    upstream.close()
    registry.reset()
    close_pools()
