"""prefect.yaml is deployable: entrypoints import, parameters fit the flows, the poll schedule is right.

Runs without a Prefect server; what `prefect deploy --all` would reject (or accept and then fail at run
time on a worker) fails here first.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]
CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS: list[dict[str, Any]] = CONFIG["deployments"]
EXPECTED = {
    "poll-cdrs",
    "backfill-cdrs",
    "import-cdr-file",
    "analyze-calls",
    "reconcile-cdrs",
    "cleanup-retention",
    "poll-shard",
    "cdr-insights",
    "pickup-files",
}


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    assert isinstance(flow, Flow), f"{entrypoint} is not a Prefect flow"
    return flow


def by_name(name: str) -> dict[str, Any]:
    return next(d for d in DEPLOYMENTS if d["name"] == name)


def test_names_are_unique_and_complete() -> None:
    names = [d["name"] for d in DEPLOYMENTS]
    assert len(names) == len(set(names)), names
    assert set(names) == EXPECTED


def test_no_pull_step_so_workers_run_the_deployed_checkout() -> None:
    # `prefect deploy` then stores set_working_directory(<checkout>); a git_clone step fails offline and
    # an explicit empty list makes the worker run in a temporary directory.
    assert "pull" not in CONFIG
    assert all("pull" not in d for d in DEPLOYMENTS)
    assert "steps.git_clone" not in (ROOT / "prefect.yaml").read_text()


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_deployment_fits_its_flow(deployment: dict[str, Any]) -> None:
    flow = load_flow(deployment["entrypoint"])
    assert deployment["work_pool"]["name"] == "audiapro"
    signature = inspect.signature(flow.fn)
    accepted = set(signature.parameters)
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    defaults = deployment.get("parameters") or {}
    schedules = deployment.get("schedules") or []
    for parameters in [defaults] + [s.get("parameters") or {} for s in schedules]:
        assert set(parameters) <= accepted, f"unknown parameters {set(parameters) - accepted}"
    # A scheduled run has nobody to fill in the form: it must get every required parameter.
    # On-demand deployments may leave them to the run form (enforced by the parameter schema).
    for schedule in schedules:
        missing = required - set(defaults) - set(schedule.get("parameters") or {})
        assert not missing, f"schedule of {deployment['name']} lacks required parameters {missing}"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_parameters_are_typed_and_described_for_the_ui_form(deployment: dict[str, Any]) -> None:
    flow = load_flow(deployment["entrypoint"])
    schema = flow.parameters.model_dump()
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{deployment['name']}: parameter {name} has no docstring description"
        assert {"type", "anyOf", "allOf", "$ref"} & prop.keys(), f"{deployment['name']}: {name} is untyped"


def test_poll_runs_every_two_minutes_and_never_overlaps() -> None:
    poll = by_name("poll-cdrs")
    assert poll["entrypoint"] == "flows/poll.py:poll_cdrs"
    assert [s["interval"] for s in poll["schedules"]] == [120]
    assert all(s.get("active", True) for s in poll["schedules"])
    assert poll["concurrency_limit"]["limit"] == 1
    assert poll["concurrency_limit"]["collision_strategy"] == "CANCEL_NEW"
    assert 60 <= poll["concurrency_limit"].get("grace_period_seconds", 300) <= 300


def test_poll_shard_runs_only_when_a_tick_starts_it() -> None:
    shard = by_name("poll-shard")
    assert shard["entrypoint"] == "flows/poll.py:poll_shard"
    assert not shard.get("schedules") and not shard.get("concurrency_limit")  # the tick bounds it


def test_reconcile_runs_daily_after_every_us_day_closed_and_on_demand_per_tenant_and_day() -> None:
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from audiapro.reconcile import latest_closed_day
    from audiapro.tenants import TenantSettings

    reconcile = by_name("reconcile-cdrs")
    assert reconcile["entrypoint"] == "flows/reconcile.py:reconcile_cdrs"
    (schedule,) = reconcile["schedules"]
    assert schedule["timezone"] == "UTC" and schedule.get("active", True)
    minute, hour, *rest = schedule["cron"].split()
    assert rest == ["*", "*", "*"]
    # At the scheduled time, yesterday is closed in every mainland US zone, in winter and in summer.
    for today in (date(2026, 1, 15), date(2026, 7, 15)):
        run_at = datetime(today.year, today.month, today.day, int(hour), int(minute), tzinfo=ZoneInfo("UTC"))
        for zone in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"):
            tenant = TenantSettings(name="t", timezone=zone)
            assert latest_closed_day(tenant, run_at) == today - timedelta(days=1), (zone, today)
    assert reconcile["concurrency_limit"]["limit"] == 1
    parameters = load_flow(reconcile["entrypoint"]).parameters.model_dump()["properties"]
    assert {"tenant", "day", "days_back"} <= set(parameters)
    assert parameters["day"]["anyOf"][0]["format"] == "date"


def test_retention_cleanup_runs_daily_one_at_a_time_and_on_demand_per_tenant() -> None:
    cleanup = by_name("cleanup-retention")
    assert cleanup["entrypoint"] == "flows/retention.py:cleanup_retention"
    (schedule,) = cleanup["schedules"]
    assert schedule["timezone"] == "UTC" and schedule.get("active", True)
    assert schedule["cron"].split()[2:] == ["*", "*", "*"]  # every day
    assert cleanup["concurrency_limit"]["limit"] == 1
    parameters = load_flow(cleanup["entrypoint"]).parameters.model_dump()["properties"]
    assert set(parameters) == {"tenant"}


def test_insights_run_hourly_one_at_a_time() -> None:
    # Hourly: each tenant's day closes at its own local midnight; a run with nothing new is cheap.
    insights = by_name("cdr-insights")
    assert [s["cron"] for s in insights["schedules"]] == ["20 * * * *"]
    assert insights["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
