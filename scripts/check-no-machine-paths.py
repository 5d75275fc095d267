#!/usr/bin/env python3
"""Fail when a file of the repository names an absolute path of somebody's machine.

A path into a home directory (under ``/home``, ``/root``, ``/Users`` or ``C:\\Users``), a workplace
or mount directory (``/work``, ``/mnt``, ``/media``) or a ``file://`` URL to one of them
means the text only makes sense on the machine it was written on: docstrings and docs point into
the repository (``docs/...``) instead, sample output shows a placeholder such as ``<checkout>``.
System locations a deployment chooses (``/opt/audiapro``, ``/usr/lib/postgresql``, ``/tmp``) are
not machine paths and pass.

Usage: ``scripts/check-no-machine-paths.py [ROOT]`` (default: the checkout this script is in).
Reads the files git tracks plus the untracked ones it does not ignore (every file below ROOT when
ROOT is not a git checkout), skips binary files, prints ``path:line: match`` for each hit and exits 1
when there is one. `make lint` runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# Not preceded by a word character, a dot, a tilde, a dash or a slash, so relative paths (under
# ``docs`` or ``~``) and the paths of URLs (after ``example.com``) are not hits.
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])/(?:home|root|Users|work|mnt|media)/[\w.-]"
    r"|file:///(?:home|root|Users|work|mnt|media)/"
    r"|\b[A-Za-z]:\\Users\\",
)
#: Directories never scanned when ROOT is not a git checkout.
SKIPPED_DIRS = frozenset({".git", ".venv", ".tools", ".audiapro", ".prefect", "__pycache__", "node_modules"})


def repository_files(root: Path) -> list[Path]:
    """The files git would commit below ``root`` (tracked + untracked, not ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(_walk(root))
    return sorted(root / name for name in listed.decode().split("\0") if name)


def _walk(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(root).parts):
            yield path


def hits(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, matched text)`` of each machine path in a text file (none for binary files)."""
    try:
        data = path.read_bytes()
    except OSError:  # a file deleted in the work tree but still tracked
        return
    if b"\0" in data:
        return
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        for match in MACHINE_PATH.finditer(line):
            yield number, line[match.start() : match.start() + 60].split()[0]


def main(argv: list[str]) -> int:
    """Scan ROOT (``argv[0]``, default the checkout) and report; 1 when anything was found."""
    root = Path(argv[0]).resolve() if argv else Path(__file__).resolve().parents[1]
    found = [
        f"{path.relative_to(root)}:{number}: {text}"
        for path in repository_files(root)
        for number, text in hits(path)
    ]
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} absolute machine path(s): point into the repository or use a placeholder",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
