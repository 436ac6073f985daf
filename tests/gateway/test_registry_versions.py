"""Registry writes reach a serving process that did not make them: through the shared
cache's version with Redis, through the database's version row when the cache is
process-local (the default mode), at most one primary-key read per DB_CHECK_SECONDS."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from gateway import prober
from gateway import registry as registry_module
from gateway.models import RegistryVersion, Service
from gateway.registry import registry


def _written_elsewhere(**fields):
    """A write as another process makes it: its rows and the version row change, this
    process's cache and snapshot hear nothing (queryset updates send no signals)."""
    Service.objects.filter(name="svc").update(**fields)
    RegistryVersion.objects.filter(pk=1).update(version=F("version") + 1)


def test_every_registry_write_moves_the_database_version(make_service, upstream):
    service = make_service("svc", [upstream.url])
    first = registry_module.database_version()
    assert first
    service.public = True
    service.save()
    assert registry_module.database_version() > first
    before = registry_module.database_version()
    service.delete()
    assert registry_module.database_version() > before


@pytest.mark.parametrize("local", [True, False])
def test_another_process_write_reaches_the_snapshot_with_a_local_cache(
    make_service, upstream, api, monkeypatch, local
):
    monkeypatch.setattr(prober, "cache_is_shared", lambda: not local)
    monkeypatch.setattr(registry_module, "DB_CHECK_SECONDS", 0)
    make_service("svc", [upstream.url], public=True)
    assert api.get("/api/svc/x").status_code == 200
    _written_elsewhere(enabled=False)
    # with a shared cache the other process's bump of the cache version is what
    # tells (tests/gateway/test_gunicorn.py); the database row is not read at all
    assert api.get("/api/svc/x").status_code == (503 if local else 200)


def test_a_local_cache_costs_one_read_per_interval(
    make_service, upstream, api, monkeypatch
):
    monkeypatch.setattr(prober, "cache_is_shared", lambda: False)
    monkeypatch.setattr(registry_module, "DB_CHECK_SECONDS", 3600)
    make_service("svc", [upstream.url], public=True)
    assert api.get("/api/svc/x").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api.get("/api/svc/x").status_code == 200
    assert len(queries) == 0, [q["sql"] for q in queries]
    registry.recheck_database()  # an interval has passed
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api.get("/api/svc/x").status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "gateway_registryversion" in queries[0]["sql"]
