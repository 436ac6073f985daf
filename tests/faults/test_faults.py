"""The fault scenarios of ``bench/faults`` that fit in a minute, against real processes:
two gunicorn nodes (production settings, 2 workers each) on one PostgreSQL database and
a private redis-server, three upstream instances and a PostgreSQL fault proxy, under a
background load. Each test runs one scenario of ``bench/faultlib/scenarios.py`` and
fails with the checks that did not hold. The soak, the PostgreSQL outage and the full
table are the harness's job (README, "Failure policy").

The cluster has its own database (``<DATABASE_URL's name>_faults``, or
``xenx_faults_test``; dropped and created) on the PostgreSQL server of ``DATABASE_URL``
or 127.0.0.1:5432, and its own Redis, whatever the test run's configuration.
"""

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from faultlib import scenarios  # noqa: E402
from faultlib.cluster import Cluster, Ports, pg_reachable, pg_server_url  # noqa: E402

pytestmark = pytest.mark.slow


def _db_name() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        name = urlsplit(url).path.strip("/")
        if name:
            return f"{name}_faults"
    return "xenx_faults_test"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the fault tests start their own)")
    reason = pg_reachable(pg_server_url())
    if reason:
        pytest.skip(f"the fault tests need a PostgreSQL server: {reason}")
    nodes = Cluster(
        Ports.ephemeral(),
        tmp_path_factory.mktemp("faults"),
        db_name=_db_name(),
        users=20,
    )
    with nodes:
        yield nodes


@pytest.fixture(scope="module")
def timing():
    return scenarios.Timing(redis_down=6.0, upstream_down=3.0, threads=4, rate=15.0)


@pytest.mark.parametrize("name", ["shared", "instance", "worker", "redis"])
def test_scenario(cluster, timing, name):
    result = scenarios.run(name, cluster, timing)
    assert result.ok, f"{result.scenario}:\n{result.failures()}"
