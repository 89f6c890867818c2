"""deploy/grafana and deploy/prometheus: the dashboards are Grafana dashboard JSON, every query
(of a dashboard or an alert rule) parses (promtool) and reads only series the code exports, with
labels those series carry; and the dashboards show what the code measures."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.exported import Exported
from tests.deploy.promql import Reads, grafana_to_promql, reads, variable_reads
from tests.deploy.support import DASHBOARDS, RULES, load_yaml, tool

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = frozenset({"row", "timeseries", "stat", "bargauge", "table", "gauge", "text"})
BUILTIN_VARIABLES = frozenset({"__rate_interval", "__interval", "__range", "__all"})
# oneapi series deliberately left off the dashboards (none so far).
NOT_ON_DASHBOARDS: frozenset[str] = frozenset()


@cache
def dashboard(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL with Grafana variables) of every panel target."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            where = f"{board['uid']} panel {panel['id']} ({panel['title']}) {target['refId']}"
            yield where, target["expr"]


def variable_queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield (
                f"{board['uid']} variable {variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


def rule_queries() -> Iterator[tuple[str, str]]:
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"])


def dashboard_ids(path: Path) -> str:
    return path.stem


# --- Grafana dashboard JSON ------------------------------------------------------------------


def test_there_are_dashboards_with_unique_uids_and_titles() -> None:
    boards = [dashboard(path) for path in DASHBOARDS]
    assert len(boards) >= 4
    assert len({b["uid"] for b in boards}) == len({b["title"] for b in boards}) == len(boards)


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids)
def test_dashboard_has_grafanas_required_fields(path: Path) -> None:
    board = dashboard(path)
    assert board["uid"] == path.stem
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"])
    assert isinstance(board["title"], str)
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None, "a provisioned dashboard carries no id"
    assert "oneapi" in board["tags"]
    assert set(board["time"]) == {"from", "to"}
    assert isinstance(board["panels"], list)
    assert board["panels"]
    assert isinstance(board["templating"]["list"], list)


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids)
def test_panels_have_unique_ids_and_fit_the_grid(path: Path) -> None:
    board = dashboard(path)
    ids = [panel["id"] for panel in panels(board)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), "panel ids repeat"
    taken: set[tuple[int, int]] = set()
    for panel in panels(board):
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert panel["title"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y"))
        assert min(grid["h"], grid["w"]) > 0
        assert min(grid["x"], grid["y"]) >= 0
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['id']} is wider than the grid"
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['id']} overlaps another"
        taken |= cells


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids)
def test_every_query_uses_the_datasource_variable(path: Path) -> None:
    board = dashboard(path)
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in panels(board):
        if panel["type"] in ("row", "text"):
            assert "targets" not in panel
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        targets = panel["targets"]
        assert targets, f"panel {panel['title']} queries nothing"
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids))
        for target in targets:
            assert target["datasource"] == DATASOURCE
            assert target["expr"].strip()
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids)
def test_every_variable_a_query_uses_is_defined(path: Path) -> None:
    board = dashboard(path)
    defined = {variable["name"] for variable in board["templating"]["list"]} | BUILTIN_VARIABLES
    for where, expr in [*queries(board), *variable_queries(board)]:
        used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expr))
        assert used <= defined, f"{where} uses undefined {used - defined}"


# --- PromQL --------------------------------------------------------------------------------------


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    expressions = [
        (where, grafana_to_promql(expr))
        for path in DASHBOARDS
        for where, expr in queries(dashboard(path))
    ]
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"oneapi_dashboard_query_{index}", "expr": expr}
                    for index, (_, expr) in enumerate(expressions)
                ],
            }
        ]
    }
    (tmp_path / "dashboards.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(tmp_path / "dashboards.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def unexported(exported: Exported, where: str, read: Reads) -> list[str]:
    problems = []
    available: set[str] = set()
    for metric, labels in read.metrics.items():
        if metric not in exported.series:
            problems.append(f"{where}: {metric} is not exported by the code")
            continue
        available |= exported.series[metric]
        missing = labels - exported.series[metric]
        if missing:
            problems.append(f"{where}: {metric} has no label {sorted(missing)}")
    missing_grouping = read.grouping - available
    if read.metrics and not problems and missing_grouping:
        problems.append(f"{where}: groups by {sorted(missing_grouping)}, which no series has")
    return problems


def test_dashboards_query_only_what_the_code_exports(exported: Exported) -> None:
    problems = []
    for path in DASHBOARDS:
        board = dashboard(path)
        for where, expr in queries(board):
            problems += unexported(exported, where, reads(expr))
        for where, query in variable_queries(board):
            problems += unexported(exported, where, variable_reads(query))
    assert problems == []


def test_alert_rules_query_only_what_the_code_exports(exported: Exported) -> None:
    problems = []
    for where, expr in rule_queries():
        problems += unexported(exported, where, reads(expr))
    assert problems == []


def test_the_checker_notices_a_wrong_name_or_label(exported: Exported) -> None:
    assert unexported(exported, "x", reads("rate(oneapi_relay_request_total[5m])"))
    assert unexported(exported, "x", reads('oneapi_relay_requests_total{modle="a"}'))
    # `job` is Prometheus's own label, on every series.
    assert unexported(exported, "x", reads("sum by (job) (oneapi_health_scheduler_leader)")) == []
    assert unexported(exported, "x", reads("sum by (modle) (oneapi_relay_requests_total)"))
    assert unexported(exported, "x", reads("oneapi_relay_upstream_latency_seconds")), (
        "a histogram is read through _bucket, _sum and _count"
    )


def test_every_oneapi_series_is_on_a_dashboard(exported: Exported) -> None:
    shown: set[str] = set()
    for path in DASHBOARDS:
        for _, expr in queries(dashboard(path)):
            shown |= set(reads(expr).metrics)
    families = {
        name
        for name in exported.families
        if name.startswith("oneapi_") and not name.endswith("_created")
    }
    unshown = {
        family
        for family in families - NOT_ON_DASHBOARDS
        if not any(series.startswith(family) for series in shown)
    }
    assert unshown == set(), "add a panel, or list them in NOT_ON_DASHBOARDS"


@pytest.mark.parametrize(
    ("uid", "needed"),
    [
        (
            "oneapi-relay",
            {"oneapi_relay_requests_total", "oneapi_relay_upstream_latency_seconds_bucket"},
        ),
        ("oneapi-spend", {"oneapi_relay_tokens_total", "oneapi_relay_quota_total"}),
        (
            "oneapi-billing",
            {
                "oneapi_billing_consumer_pending",
                "oneapi_billing_consumer_ack_pending",
                "oneapi_billing_batch_seconds_bucket",
                "oneapi_relay_publish_buffered",
            },
        ),
        (
            "oneapi-channels",
            {
                "oneapi_health_channel_status",
                "oneapi_health_channel_success_rate",
                "oneapi_health_channel_test_seconds_sum",
                "oneapi_health_channel_balance_usd",
            },
        ),
    ],
)
def test_dashboards_cover_what_operators_watch(uid: str, needed: set[str]) -> None:
    (path,) = [p for p in DASHBOARDS if p.stem == uid]
    shown: set[str] = set()
    for _, expr in queries(dashboard(path)):
        shown |= set(reads(expr).metrics)
    assert needed <= shown


def test_grafana_variables_become_promql() -> None:
    assert grafana_to_promql('rate(x{m=~"$model"}[$__rate_interval]) / $quota_per_unit') == (
        'rate(x{m=~"x"}[5m]) / 1'
    )
    assert grafana_to_promql("increase(x[${__range}])") == "increase(x[5m])"


def test_reads_separates_metrics_functions_and_labels() -> None:
    read = reads(
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{channel="1"}[5m])))'
        " / on () group_left sum(b_total offset 1h) * 1e3 and vector(0)"
    )
    assert read.metrics == {"a_bucket": {"channel"}, "b_total": set()}
    assert read.grouping == {"le", "model"}
    assert variable_reads('label_values(a_total{x="1"}, model)').metrics == {
        "a_total": {"x", "model"}
    }
