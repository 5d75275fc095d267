"""The example CI workflow parses and deploys through deployments/deploy.sh after the tests pass."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_example_workflow_tests_then_deploys_with_the_deploy_script() -> None:
    workflow = yaml.safe_load((ROOT / "deployments" / "github-actions-deploy.yml").read_text())
    jobs = workflow["jobs"]
    assert jobs["deploy"]["needs"] == "test"
    steps = " ".join(step.get("run", "") for step in jobs["deploy"]["steps"])
    assert "deployments/deploy.sh" in steps
    assert jobs["deploy"]["env"]["PREFECT_API_URL"] == "${{ secrets.PREFECT_API_URL }}"
    assert (ROOT / "deployments" / "deploy.sh").stat().st_mode & 0o111, "deploy.sh must be executable"
