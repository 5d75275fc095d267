"""`audiapro` commands for this area (registered by audiapro.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
