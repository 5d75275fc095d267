"""The one home of AudiaPro's local state: ``$AUDIAPRO_HOME``, by default ``~/.audiapro``.

Everything a local installation keeps lives under it, whichever directory a command runs from:

* ``warehouse.sqlite`` -- the embedded warehouse (when no Postgres URL is configured);
* ``spool/`` -- the import spool (``settings.IMPORT_SPOOL_DIR``);
* ``run/`` -- the PID files, logs and API URL of the stack `make up` runs;
* ``prefect/`` -- Prefect's own home (``PREFECT_HOME``: its database with the blocks, i.e. the
  tenants, and its profiles), unless the user set ``PREFECT_HOME`` themselves.

Why a per-user absolute default rather than the checkout or the current directory: a path relative
to the current directory gave every directory its own empty warehouse and tenant list, and the
checkout is unknown to an installed package. ``~/.audiapro`` is what Prefect does (``~/.prefect``),
is the same for the CLI, the make targets and the workers they start, and is one directory to back
up or remove. Standard library only: the CLI sets it before Prefect is imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

HOME_ENV: Final = "AUDIAPRO_HOME"
PREFECT_HOME_ENV: Final = "PREFECT_HOME"
#: Used when ``AUDIAPRO_HOME`` is unset or empty (``~`` is the user's home directory).
DEFAULT_HOME: Final = "~/.audiapro"
#: Subdirectory of the home that is Prefect's home unless ``PREFECT_HOME`` is set.
PREFECT_SUBDIR: Final = "prefect"
#: Subdirectory holding the local stack's PID files, logs and API URL.
RUN_SUBDIR: Final = "run"
WAREHOUSE_FILE: Final = "warehouse.sqlite"


def audiapro_home() -> Path:
    """The absolute home: ``$AUDIAPRO_HOME`` (``~`` expanded, a relative one made absolute) or the default."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().absolute()


def prefect_home() -> Path:
    """Prefect's home: ``$PREFECT_HOME`` when the user set it, else ``<home>/prefect``."""
    explicit = os.environ.get(PREFECT_HOME_ENV)
    return Path(explicit).expanduser().absolute() if explicit else audiapro_home() / PREFECT_SUBDIR


def run_dir() -> Path:
    """Where the local stack keeps its PID files, logs and API URL."""
    return audiapro_home() / RUN_SUBDIR


def use_home() -> Path:
    """Create the home and Prefect's, export both (absolute) into this process's environment.

    Must run before Prefect is imported (Prefect reads ``PREFECT_HOME`` once, at import), so that
    this process and every process it starts (flow runs, workers, servers) share one state.
    """
    home, prefect = audiapro_home(), prefect_home()
    # Prefect creates its home only when the parent exists; its temporary server then cannot
    # create its database and times out after minutes instead of saying why.
    prefect.mkdir(parents=True, exist_ok=True)
    os.environ[HOME_ENV] = str(home)
    os.environ[PREFECT_HOME_ENV] = str(prefect)
    return home
