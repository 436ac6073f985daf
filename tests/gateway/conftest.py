"""Throwaway upstream servers on 127.0.0.1 and service factories for gateway tests."""

import pytest

from gateway import services
from gateway.upstream import close_pools
from tests.support import ports
from tests.support.upstream import PathUpstream


@pytest.fixture
def upstream_factory():
    """upstream_factory(name) → a ``PathUpstream`` answering as instance ``name``
    (tests/support/upstream.py), closed at the end of the test."""
    started = []

    def make(name="up"):
        up = PathUpstream(name)
        started.append(up)
        return up

    yield make
    for up in started:
        up.close()


@pytest.fixture
def test_servers():
    """test_servers(cls, *args, **kwargs): a raw-socket test server (an upstream, a
    fake Redis) started for this test and closed at its end."""
    started = []

    def make(cls, *args, **kwargs):
        server = cls(*args, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def upstream(upstream_factory):
    return upstream_factory("up1")


@pytest.fixture(autouse=True)
def _closed_pools():
    """The upstream pools of a test closed after it (the registry and the other memos
    are reset by tests/conftest.py's hook)."""
    yield
    close_pools()


@pytest.fixture
def make_service(db):
    """make_service(name, urls, **fields) → Service (through service_create)."""

    def make(name="echo", urls=(), **fields):
        return services.service_create(name=name, instances=list(urls), **fields)

    return make


def closed_port_url():
    """A URL on which nothing listens (connection refused)."""
    return ports.closed_port_url()
