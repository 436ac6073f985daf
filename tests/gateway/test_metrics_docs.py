"""The metrics an operator reads are the ones served: the README's metrics table and
every query of the Grafana dashboard (docs/grafana-dashboard.json) against the live
/metrics text."""

import json
import re

import pytest

from core.roles import Role
from tests.xenx.servers import ROOT

DASHBOARD = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
README = (ROOT / "README.md").read_text()
METRIC = re.compile(r"\b((?:xenx|process|python)_[a-z0-9_]+)")


@pytest.fixture
def served(make_user, auth_client) -> tuple[set, set]:
    """(XenX's metric families, every series name a query may use) of /metrics."""
    text = auth_client(make_user(Role.ADMIN)).get("/metrics").content.decode()
    families, names = set(), set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        if name.startswith("xenx_") and not name.endswith("_created"):
            families.add(name)
    return families, names


def _queries():
    return [
        target["expr"]
        for panel in DASHBOARD["panels"]
        for target in panel.get("targets", [])
    ] + [v["definition"] for v in DASHBOARD["templating"]["list"]]


def test_every_dashboard_query_names_a_served_metric(served):
    _, names = served
    for query in _queries():
        used = METRIC.findall(query)
        assert used, f"a query names no metric: {query}"
        unknown = sorted(set(used) - names)
        assert not unknown, f"{query}: not in /metrics: {unknown}"


def test_the_dashboard_shows_every_xenx_metric(served):
    families, _ = served
    used = {name for query in _queries() for name in METRIC.findall(query)}
    shown = {f for f in families if any(u.startswith(f) for u in used)}
    assert shown == families, f"no panel for {sorted(families - shown)}"


def test_the_readme_metrics_table_lists_every_metric_served(served):
    families, _ = served
    table = README.split("| metric | type | labels | what |", 1)[1].split("\n\n")[0]
    documented = set(re.findall(r"^\| `(xenx_[a-z0-9_]+)`", table, re.M))
    assert documented == families, (
        f"README metrics table: missing {sorted(families - documented)}, "
        f"not served {sorted(documented - families)}"
    )


def test_the_dashboard_imports_with_a_data_source_input():
    assert [i["name"] for i in DASHBOARD["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
