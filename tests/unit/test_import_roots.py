"""Import roots: which paths the import-cdr-file flow may read (decided before anything is opened)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audiapro import importing, settings
from audiapro.importing import ImportPathRefused, allowed_import_path, granted_import_file, import_roots


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "passwd"
    path.parent.mkdir()
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return path


def test_the_spool_and_the_listed_directories_are_the_roots(
    spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert import_roots() == (spool.resolve(),)
    first, second = tmp_path / "drop", tmp_path / "nfs" / "cdr"
    monkeypatch.setenv(settings.IMPORT_ROOTS_ENV, f"{first}{os.pathsep}{os.pathsep} {os.pathsep}{second}")
    assert import_roots() == (spool.resolve(), first.resolve(), second.resolve())
    assert import_roots({settings.IMPORT_ROOTS_ENV: str(first)}) == (spool.resolve(), first.resolve())


def test_files_inside_a_root_are_admitted_resolved(
    spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = spool / "day" / "export.csv"
    assert allowed_import_path(inside) == inside.resolve()  # need not exist yet: that is the reader's error
    assert allowed_import_path(spool / "day" / ".." / "x.csv") == (spool / "x.csv").resolve()
    drop = tmp_path / "drop"
    monkeypatch.setenv(settings.IMPORT_ROOTS_ENV, str(drop))
    assert allowed_import_path(str(drop / "a.json")) == (drop / "a.json").resolve()


def test_a_path_outside_every_root_is_refused_with_one_line_naming_the_roots(
    spool: Path, outside: Path
) -> None:
    with pytest.raises(ImportPathRefused) as caught:
        allowed_import_path(outside)
    message = str(caught.value)
    root = spool.resolve()
    assert message == (
        f"refused to read {str(outside)!r}: imports read only files inside the import roots ({root}); "
        f"put the file into {root} or add its directory to AUDIAPRO_IMPORT_ROOTS "
        f"({os.pathsep!r}-separated) where the flow runs"
    )
    assert "\n" not in message and "root:x" not in message


@pytest.mark.parametrize(
    "escape",
    ["dotdot", "link-to-file", "link-to-dir", "prefix-sibling", "nul"],
)
def test_escapes_from_a_root_are_refused(spool: Path, outside: Path, escape: str) -> None:
    if escape == "dotdot":
        path = spool / ".." / ".." / "elsewhere" / "passwd"
    elif escape == "link-to-file":
        path = spool / "export.csv"
        path.symlink_to(outside)
    elif escape == "link-to-dir":
        (spool / "linked").symlink_to(outside.parent, target_is_directory=True)
        path = spool / "linked" / "passwd"
    elif escape == "prefix-sibling":  # /…/spool-old is not inside /…/spool
        path = spool.with_name("spool-old") / "x.csv"
    else:
        path = Path(f"{spool}/x\0.csv")
    with pytest.raises(ImportPathRefused, match=r"^refused to read"):
        allowed_import_path(path)


def test_a_link_that_stays_inside_the_roots_is_followed(spool: Path, tmp_path: Path) -> None:
    target = spool / "2026" / "march.csv"
    target.parent.mkdir()
    target.write_text("x")
    (spool / "latest.csv").symlink_to(target)
    assert allowed_import_path(spool / "latest.csv") == target.resolve()


def test_a_granted_file_is_admitted_only_while_granted(spool: Path, outside: Path) -> None:
    with granted_import_file(outside) as granted:
        assert granted == outside.resolve()
        assert allowed_import_path(outside) == granted
        with granted_import_file(outside):  # nested grants of one file are counted
            pass
        assert allowed_import_path(str(outside)) == granted
        with pytest.raises(ImportPathRefused):  # its directory is not granted with it
            allowed_import_path(outside.with_name("shadow"))
    assert importing._granted == {}
    with pytest.raises(ImportPathRefused):
        allowed_import_path(outside)
