"""contrib/: the Prometheus alert rules (checked and unit-tested with promtool) and the
Grafana dashboard, both over the metrics sg-api and sg-agent really export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.metrics import AgentMetrics
from sg.api.metrics import ApiMetrics
from sg.api.routes import ROUTES
from tests.support.interop import require_tool

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
ALERTS = CONTRIB / "prometheus" / "alerts.yml"
ALERTS_TEST = CONTRIB / "prometheus" / "alerts_test.yml"
DASHBOARD = CONTRIB / "grafana" / "servicegroup.json"

#: Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "bool", "offset", "inf", "nan"}  # fmt: skip


def exported_series() -> set[str]:
    """Every series name sg-api and sg-agent expose, read from their real expositions."""
    api = ApiMetrics(route.path for route in ROUTES)
    api.observe("/v1/services", "GET", 200, 0.01)  # families with labels print once used
    text = (api.render([]) + AgentMetrics().render()).decode()
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"} if kind == "histogram" else {name}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label matchers,
    grouping labels, ranges, strings and numbers left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            found.add(name)
    return found


def test_metric_names_parser() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, host) (rate(sg_x_bucket{topic=~"$t"}[5m]))) or vector(0)'
    assert metric_names(expr) == {"sg_x_bucket"}
    assert metric_names("a == 0 unless on (topic) (count by (topic) (b) > 1 and c)") == {"a", "b", "c"}


def test_exported_series_read_from_the_code() -> None:
    names = exported_series()
    expected = {
        "sg_service_up",
        "sg_api_listing_success",
        "sg_api_requests_total",
        "sg_agent_beats_total",
        "sg_agent_beat_duration_seconds_bucket",
        "sg_agent_store_clock_skew_seconds",
    }
    assert expected <= names


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_pass_promtool_check() -> None:
    promtool = require_tool("promtool")
    done = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in done.stdout


def test_alert_rules_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", str(ALERTS_TEST)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alert_rules_cover_the_issue_and_use_exported_metrics() -> None:
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    # A service down, a mass event, an agent whose beats fail, clock skew, the API unreachable.
    issue = {"SgServiceDown", "SgMassServiceLoss", "SgAgentBeatsFailing", "SgClockSkew", "SgApiUnreachable"}
    assert issue <= names
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text(encoding="utf-8")))
    assert tested == names, f"alerts without a promtool unit test: {sorted(names - tested)}"
    allowed = exported_series() | PROMETHEUS_OWN
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= allowed, f"{rule['alert']} queries unknown metrics {sorted(used - allowed)}"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert {"summary", "description"} <= set(rule["annotations"])


def _queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", variable["definition"]))
    return exprs


def test_dashboard_is_valid_json_and_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 8
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == "${datasource}"
    allowed = exported_series() | PROMETHEUS_OWN
    used: set[str] = set()
    for expr in _queries(dashboard):
        names = metric_names(expr)
        assert names, expr
        assert names <= allowed, f"{expr!r} queries unknown metrics {sorted(names - allowed)}"
        used |= names
    # Every family the project exports is on the dashboard somewhere.
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in allowed if not n.endswith("_created")}
    shown = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert families - shown == set(), f"exported but not on the dashboard: {sorted(families - shown)}"


@pytest.mark.parametrize("path", [ALERTS, ALERTS_TEST, DASHBOARD])
def test_contrib_files_end_with_a_newline(path: Path) -> None:
    assert path.read_bytes().endswith(b"\n")
