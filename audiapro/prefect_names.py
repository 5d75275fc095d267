"""The names the pipeline gives its Prefect objects, in one place.

Plain Python without a Prefect import, so the plain modules (the local stack, the REST helpers, the
CLI) and the Prefect side (flows, tasks, blocks, deployment scripts) read the same names. Only
``prefect.yaml`` has to spell them again (YAML imports nothing); ``tests/unit/test_prefect_names.py``
checks that it agrees with this module.
"""

from __future__ import annotations

from typing import Final

#: The process work pool every deployment runs on.
WORK_POOL: Final = "audiapro"

#: The flows, each deployed under its own name (prefect.yaml): the live poll, history from the PBX,
#: file import, AI analysis, completeness, retention, file pickup (SFTP and e-mail), insights and
#: fraud alerts, and one shard of a poll tick (fan-out).
FLOWS: Final = ("poll-cdrs", "backfill-cdrs", "import-cdr-file", "analyze-calls", "reconcile-cdrs",
                "cleanup-retention", "pickup-files", "cdr-insights", "poll-shard")  # fmt: skip
(POLL_FLOW, BACKFILL_FLOW, IMPORT_FLOW, ANALYZE_FLOW, RECONCILE_FLOW, RETENTION_FLOW, PICKUP_FLOW,
 INSIGHTS_FLOW, POLL_SHARD_FLOW) = FLOWS  # fmt: skip


def deployment_name(flow: str) -> str:
    """``flow/deployment`` as Prefect addresses a deployment (ours are named after their flow)."""
    return f"{flow}/{flow}"


POLL_DEPLOYMENT: Final = deployment_name(POLL_FLOW)
ANALYZE_DEPLOYMENT: Final = deployment_name(ANALYZE_FLOW)
#: One shard of a poll tick's tenants; `poll-cdrs` starts runs of it when it fans out.
POLL_SHARD_DEPLOYMENT: Final = deployment_name(POLL_SHARD_FLOW)

#: Block types (slugs): a tenant's PBX, the warehouse URL, OpenAI credentials, analysis settings.
BLOCK_TYPES: Final = ("clouducm", "audiapro-warehouse", "audiapro-openai", "audiapro-analysis-settings")
TENANT_BLOCK_TYPE, WAREHOUSE_BLOCK_TYPE, OPENAI_BLOCK_TYPE, ANALYSIS_SETTINGS_BLOCK_TYPE = BLOCK_TYPES
#: The warehouse, OpenAI and analysis-settings document used when nothing more specific exists.
DEFAULT_BLOCK: Final = "default"
#: Secret block holding the admin API's bearer token.
ADMIN_TOKEN_BLOCK: Final = "audiapro-admin-token"
#: Optional notification block (Slack, Teams, e-mail, webhook...) the alert automations send to.
ALERT_BLOCK: Final = "audiapro-alerts"

#: The tenant `make demo` and `make up` create and poll (a CloudUCM block of this name).
DEMO_TENANT: Final = "demo"

#: Global concurrency limits per tenant: ``ucm:<tenant>`` counts every PBX session,
#: ``ucm-bulk:<tenant>`` the sessions of bulk work (all but the live poll's).
PBX_LIMIT_PREFIX, PBX_BULK_LIMIT_PREFIX = "ucm:", "ucm-bulk:"

#: File pickup sources (block types, slugs): an SFTP drop, a mailbox. Each document names its tenant.
PICKUP_BLOCK_TYPES: Final = ("audiapro-sftp-source", "audiapro-imap-source")
SFTP_SOURCE_BLOCK_TYPE, IMAP_SOURCE_BLOCK_TYPE = PICKUP_BLOCK_TYPES

#: The daily insights run (also on demand for a tenant and a span of days).
INSIGHTS_DEPLOYMENT: Final = deployment_name(INSIGHTS_FLOW)
#: Artifact keys of the insights run, per tenant (Prefect keys: lowercase letters, digits, dashes).
INSIGHTS_ARTIFACT_PREFIX: Final = "cdr-insights-"
