"""Former home of the tenant write lock, now ``audiapro.warehouse.lock`` (kept for old imports).

New code imports ``tenant_write_lock``, ``TenantBusyError`` and ``DEFAULT_LOCK_TIMEOUT_S`` from
``audiapro.warehouse``.
"""

from audiapro.warehouse.lock import DEFAULT_LOCK_TIMEOUT_S, TenantBusyError, tenant_write_lock

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "TenantBusyError", "tenant_write_lock"]
