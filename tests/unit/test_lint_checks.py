"""The checks `make lint` adds to ruff fail on a deliberate violation: the import contracts between the
rooms (lint-imports, [tool.importlinter] in pyproject.toml) and the no-machine-paths script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("audiapro", "blocks", "tasks", "flows", "deployments")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PATH_CHECK = ROOT / "scripts" / "check-no-machine-paths.py"
#: Built in pieces so that this file itself holds no machine path.
HOME_PATH = "/" + "home/alice/audiapro/notes.md"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and the contracts, for lint-imports to analyse with a violation added."""
    root = tmp_path_factory.mktemp("house")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports in ``root`` (it analyses the packages found there first on sys.path)."""
    selection = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selection],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


#: (contract, module, code appended to it): each breaks that contract.
VIOLATIONS = [
    ("no-prefect-in-core", "audiapro/polling.py", "import prefect"),
    # Lazily, in a module that is not one of the CLI or API edges.
    ("no-prefect-in-core", "audiapro/reconcile.py", "def _start():\n    from flows.poll import poll_cdrs"),
    ("pbx-protocol-in-ucm", "audiapro/reconcile.py", "import httpx"),
    ("pbx-protocol-in-ucm", "flows/poll.py", "import httpx"),
    ("sql-in-warehouse", "audiapro/polling.py", "import sqlalchemy"),
    ("sql-in-warehouse", "tasks/poll.py", "from sqlalchemy import text"),
    (
        "warehouse-uses-analysis-models-only",
        "audiapro/warehouse/analyses.py",
        "import audiapro.analysis.policy",
    ),
    ("analysis-models-are-plain", "audiapro/analysis/models.py", "import audiapro.analysis.pricing"),
]


@pytest.mark.parametrize(("contract", "module", "violation"), VIOLATIONS)
def test_a_violation_breaks_its_contract(tree: Path, contract: str, module: str, violation: str) -> None:
    path = tree / module
    original = path.read_text()
    try:
        path.write_text(original + "\n\n" + violation + "\n")
        result = lint_imports(tree, contract)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    dotted = module.removesuffix(".py").replace("/", ".")
    assert "BROKEN" in result.stdout and dotted in result.stdout, result.stdout


def test_no_machine_path_in_the_repository() -> None:
    result = subprocess.run([sys.executable, str(PATH_CHECK)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "text",
    [
        f"see {HOME_PATH}",
        "reference: `/" + "work/shared/reference/ucm-api.md` §10",
        "log in /" + "root/.prefect/server.log",
        "open file:///" + "Users/bob/report.html",
        "C:\\" + "Users\\bob\\calls.csv",
    ],
)
def test_a_machine_path_fails_the_check(tmp_path: Path, text: str) -> None:
    (tmp_path / "notes.md").write_text(f"first line\n{text}\n")
    result = subprocess.run(
        [sys.executable, str(PATH_CHECK), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stdout.startswith("notes.md:2: "), result.stdout


@pytest.mark.parametrize(
    "text",
    [
        "warehouse:    <checkout>/.audiapro/warehouse.sqlite",
        "AUDIAPRO_CHECKOUT: /opt/audiapro",
        "PGDIR=$(mktemp -d /tmp/audiapro-pg.XXXXXX)",
        "https://example.com" + HOME_PATH + " and docs" + HOME_PATH + " and ~/" + "work/notes",
        "cdr_root/work items; PGBIN=/usr/lib/postgresql/15/bin",
    ],
)
def test_relative_system_and_url_paths_pass(tmp_path: Path, text: str) -> None:
    (tmp_path / "notes.md").write_text(text + "\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\0" + HOME_PATH.encode())  # binary: not read
    result = subprocess.run(
        [sys.executable, str(PATH_CHECK), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
