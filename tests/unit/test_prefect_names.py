"""``audiapro.prefect_names`` is the one list of Prefect names: prefect.yaml, the flows, the blocks and
the modules that cannot import it (the admin API) agree with it."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from audiapro import prefect_names as names

ROOT = Path(__file__).resolve().parents[2]
CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS: list[dict[str, Any]] = CONFIG["deployments"]


def _flow_of(entrypoint: str) -> Any:
    path, _, attribute = entrypoint.partition(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attribute)


def test_the_module_imports_without_prefect() -> None:
    # `make down` and the REST helpers use it from plain Python, without the virtualenv's Prefect.
    code = "import sys, audiapro.prefect_names; sys.exit('prefect' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0


def test_prefect_yaml_deploys_every_flow_under_its_own_name_on_the_work_pool() -> None:
    assert sorted(d["name"] for d in DEPLOYMENTS) == sorted(names.FLOWS)
    assert {name for name in CONFIG["definitions"]["work_pools"]} == {names.WORK_POOL}
    for deployment in DEPLOYMENTS:
        assert deployment["work_pool"]["name"] == names.WORK_POOL, deployment["name"]
        assert names.WORK_POOL in deployment["tags"], deployment["name"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_deployment_runs_the_flow_of_its_name(deployment: dict[str, Any]) -> None:
    flow = _flow_of(deployment["entrypoint"])
    assert flow.name == deployment["name"]
    assert names.deployment_name(flow.name) == f"{flow.name}/{deployment['name']}"


def test_deployments_the_code_starts_are_in_prefect_yaml() -> None:
    deployed = {names.deployment_name(d["name"]) for d in DEPLOYMENTS}
    assert {names.POLL_DEPLOYMENT, names.ANALYZE_DEPLOYMENT} <= deployed


def test_block_types_and_documents() -> None:
    from blocks.clouducm import CloudUCM
    from blocks.openai import AnalysisSettings, OpenAICredentials
    from blocks.warehouse import DEFAULT_WAREHOUSE_BLOCK, Warehouse

    assert CloudUCM.get_block_type_slug() == names.TENANT_BLOCK_TYPE
    assert Warehouse.get_block_type_slug() == names.WAREHOUSE_BLOCK_TYPE
    assert OpenAICredentials.get_block_type_slug() == names.OPENAI_BLOCK_TYPE
    assert AnalysisSettings.get_block_type_slug() == names.ANALYSIS_SETTINGS_BLOCK_TYPE
    assert DEFAULT_WAREHOUSE_BLOCK == names.DEFAULT_BLOCK


def test_the_admin_api_spells_the_same_names() -> None:
    # audiapro/api/ keeps its own constants for now; they must not drift from this module.
    from audiapro.api import orchestrator

    assert orchestrator.POLL_DEPLOYMENT == names.POLL_DEPLOYMENT
    assert orchestrator.TENANT_BLOCK_TYPE == names.TENANT_BLOCK_TYPE
    assert orchestrator.ADMIN_TOKEN_BLOCK == names.ADMIN_TOKEN_BLOCK


def test_no_flow_or_deployment_name_is_spelled_out_elsewhere_in_the_code() -> None:
    # String constants only (docstrings and messages may name a flow); the admin API and the file
    # import are other helpers' areas and are checked against this module above.
    allowed = {"audiapro/prefect_names.py", "audiapro/api/orchestrator.py", "audiapro/api/fake.py",
               "flows/import_file.py"}  # fmt: skip
    spelled = {*names.FLOWS, names.POLL_DEPLOYMENT, names.ANALYZE_DEPLOYMENT, names.TENANT_BLOCK_TYPE}
    found = []
    for package in ("audiapro", "blocks", "tasks", "flows", "deployments"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in allowed:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in spelled:
                    found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert not found, "use audiapro.prefect_names instead:\n" + "\n".join(found)
