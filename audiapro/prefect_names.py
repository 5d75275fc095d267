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

# Flows. Each has one deployment of the same name (prefect.yaml).
POLL_FLOW: Final = "poll-cdrs"
BACKFILL_FLOW: Final = "backfill-cdrs"
IMPORT_FLOW: Final = "import-cdr-file"
ANALYZE_FLOW: Final = "analyze-calls"
RECONCILE_FLOW: Final = "reconcile-cdrs"
FLOWS: Final = (POLL_FLOW, BACKFILL_FLOW, IMPORT_FLOW, ANALYZE_FLOW, RECONCILE_FLOW)


def deployment_name(flow: str) -> str:
    """``flow/deployment`` as Prefect addresses a deployment (ours are named after their flow)."""
    return f"{flow}/{flow}"


POLL_DEPLOYMENT: Final = deployment_name(POLL_FLOW)
ANALYZE_DEPLOYMENT: Final = deployment_name(ANALYZE_FLOW)

# Block types (slugs) and the block documents the pipeline looks up by name.
TENANT_BLOCK_TYPE: Final = "clouducm"
WAREHOUSE_BLOCK_TYPE: Final = "audiapro-warehouse"
OPENAI_BLOCK_TYPE: Final = "audiapro-openai"
ANALYSIS_SETTINGS_BLOCK_TYPE: Final = "audiapro-analysis-settings"
#: The warehouse, OpenAI and analysis-settings document used when nothing more specific exists.
DEFAULT_BLOCK: Final = "default"
#: Secret block holding the admin API's bearer token.
ADMIN_TOKEN_BLOCK: Final = "audiapro-admin-token"
#: Optional notification block (Slack, Teams, e-mail, webhook...) the alert automations send to.
ALERT_BLOCK: Final = "audiapro-alerts"

#: The tenant `make demo` and `make up` create and poll (a CloudUCM block of this name).
DEMO_TENANT: Final = "demo"

# Global concurrency limits per tenant: every PBX session, and the sessions of bulk work.
PBX_LIMIT_PREFIX: Final = "ucm:"
PBX_BULK_LIMIT_PREFIX: Final = "ucm-bulk:"
