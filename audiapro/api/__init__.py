"""The admin HTTP API: health (``GET /api/health``) and "sync now" (``POST /api/admin/sync-cdrs``).

``health`` classifies, ``service`` gathers the inputs, ``app`` is the FastAPI app, ``gate`` its
front door (token checked before any body is read, bodies capped), ``orchestrator`` is the interface
to Prefect (the package's only Prefect edge, imported lazily), ``fake`` its in-memory stand-in for
tests.
"""
