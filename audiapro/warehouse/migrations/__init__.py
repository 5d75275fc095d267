"""Alembic environment of the warehouse (run it through :func:`audiapro.warehouse.upgrade`)."""
