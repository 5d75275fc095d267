"""Prefect task for one tenant's analysis run: blocks, lock, retry policy, progress artifact.

The logic is `audiapro.analysis.run.analyze_tenant`; this wrapper only wires it to the blocks.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime
from typing import Any, Final

from prefect.utilities.slugify import slugify

from audiapro.analysis.openai_analyzer import OpenAIAnalyzer
from audiapro.analysis.recordings import CallAudioFetcher
from audiapro.analysis.run import analyze_tenant
from audiapro.errors import describe_error
from audiapro.prefect_names import ANALYZE_FLOW
from audiapro.retention import recording_keeper
from audiapro.warehouse import tenant_lock
from blocks.clouducm import CloudUCM, load_tenant
from blocks.openai import load_analysis_settings, load_openai_credentials
from tasks.pbx import pbx_client_pool
from tasks.progress import ProgressReporter
from tasks.support import retrying_task
from tasks.warehouse import warehouse_engine

#: Retries cover outages that outlived the SDK's own backoff (429 without a usable Retry-After, 5xx).
ANALYZE_RETRIES: Final = 2
ANALYZE_RETRY_DELAYS: Final[list[float]] = [30.0, 120.0]
#: Runs of one tenant exclude each other (never two downloads of the same call); a run waits this
#: long for the one before it, then reports `busy`.
LOCK_WAIT_S: Final = 60.0
LOCK_PREFIX: Final = "analysis:"
#: How long recording downloads wait for a free PBX session (backfills may hold the bulk ones).
RECORDING_SESSION_WAIT_S: Final = 600.0
PERCENT: Final = 100.0


def _tenant_block(tenant: str) -> CloudUCM | None:
    try:
        return load_tenant(tenant)
    except ValueError:  # analysis of a tenant whose PBX block is gone: no recordings, UTC day
        return None


@retrying_task("analyze-tenant", "analyze-{tenant}", retries=ANALYZE_RETRIES, delays=ANALYZE_RETRY_DELAYS)
def analyze_tenant_task(
    tenant: str, since: datetime | None = None, use_batch: bool = False, max_calls: int | None = None
) -> dict[str, Any]:
    """Analyse one tenant's calls since `since` (see `audiapro.analysis.run.analyze_tenant`).

    Returns:
        A summary row (`audiapro.analysis.summary.SUMMARY_COLUMNS`).
    """
    pbx = _tenant_block(tenant)
    settings = load_analysis_settings(tenant)
    if pbx is not None:
        config = settings.tenant_config(tenant, pbx.timezone, pbx.region)
    else:
        config = settings.tenant_config(tenant, "UTC")
    if not config.enabled:
        return {"tenant": tenant, "status": "disabled"}
    credentials = load_openai_credentials(settings.credentials_block)
    engine = warehouse_engine()
    progress = ProgressReporter(f"{ANALYZE_FLOW}-{slugify(tenant)}", f"{ANALYZE_FLOW}: tenant {tenant}")
    shown = [-1]

    def on_progress(done: int, total: int) -> None:
        percent = int(PERCENT * done / max(total, 1))
        if percent != shown[0]:  # one artifact update per percent, not per call
            shown[0] = percent
            progress.update(done / max(total, 1), f"{ANALYZE_FLOW}: tenant {tenant}, {done} of {total} calls")

    with ExitStack() as stack:
        acquired = stack.enter_context(
            tenant_lock(engine, LOCK_PREFIX + tenant, wait=True, timeout_s=LOCK_WAIT_S)
        )
        if not acquired:
            return {"tenant": tenant, "status": "busy"}
        analyzer = fetcher = None
        if credentials is not None:
            analyzer = OpenAIAnalyzer(
                stack.enter_context(credentials.client()),
                credentials.analyzer_settings({tenant: config.keywords}),
            )
            pool = (
                stack.enter_context(
                    pbx_client_pool(pbx, tenant, size=config.max_workers, wait_s=RECORDING_SESSION_WAIT_S)
                )
                if pbx is not None and pbx.host
                else None
            )
            days = pbx.recording_retention_days if pbx is not None else 0
            fetcher = stack.enter_context(CallAudioFetcher(pool, keep=recording_keeper(tenant, days)))
        summary = analyze_tenant(
            engine,
            config,
            analyzer=analyzer,
            fetcher=fetcher,
            since=since,
            use_batch=use_batch,
            max_calls=max_calls,
            on_progress=on_progress,
        )
    progress.update(1.0)
    return summary.as_row()


def analysis_failure_row(tenant: str, exc: BaseException, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The summary row of a tenant whose run failed (after retries); the error is credential-free."""
    return {"tenant": tenant, "status": "failed", "error": describe_error(exc, secrets)}
