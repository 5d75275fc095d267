"""Before ``prefect deploy``: create the ``audiapro`` process work pool if missing, register the blocks.

Both steps are idempotent: an existing pool is left as it is (its concurrency and job template may
have been tuned in the UI), and block registration only upserts the block types and schemas.
Usage: ``python -m deployments.bootstrap`` (against ``PREFECT_API_URL``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

from prefect.blocks.core import Block, InvalidBlockRegistration
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.process import ProcessWorker

from audiapro.prefect_names import WORK_POOL

BLOCKS_PACKAGE = "blocks"
BLOCKS_DIR = Path(__file__).resolve().parents[1] / BLOCKS_PACKAGE


def ensure_work_pool(client: SyncPrefectClient, name: str = WORK_POOL) -> bool:
    """Create the process work pool ``name`` unless it exists. Returns True when it was created."""
    try:
        client.read_work_pool(name)
        return False
    except ObjectNotFound:
        pass
    try:
        client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type=ProcessWorker.type,
                description="AudiaPro flows; any number of `prefect worker start --pool audiapro` processes.",
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
        )
    except ObjectAlreadyExists:  # a worker (or a parallel deploy) created it in the meantime
        return False
    return True


def block_modules(directory: Path = BLOCKS_DIR) -> list[str]:
    """Importable module names of the project's block modules (``blocks/*.py``)."""
    return sorted(
        f"{BLOCKS_PACKAGE}.{path.stem}" for path in directory.glob("*.py") if not path.stem.startswith("_")
    )


def register_blocks(modules: list[str]) -> list[str]:
    """Register every Block subclass defined in ``modules``; return the registered type names."""
    registered: list[str] = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not Block.is_block_class(cls) or cls.__module__ != module_name:
                continue  # imported from elsewhere (e.g. Block itself): registered by its own module
            try:
                cls.register_type_and_schema()
            except InvalidBlockRegistration:
                continue
            registered.append(cls.get_block_type_name())
    return registered


def main() -> int:
    """Create the pool and register the blocks; print what was done."""
    with get_client(sync_client=True) as client:
        created = ensure_work_pool(client)
    print(f"work pool '{WORK_POOL}' {'created (type process)' if created else 'exists'}")
    names = register_blocks(block_modules())
    print(f"block types registered: {', '.join(names) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
