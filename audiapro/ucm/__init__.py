"""Grandstream CloudUCM / UCM63xx access: API client, cdrapi parsing, PBX-local time windows.

Callers import from the module that holds what they need (``audiapro.ucm.client``,
``audiapro.ucm.errors``, ...): the package itself re-exports nothing, so importing one light module
(the errors, the time windows, the simulator) does not load the HTTP client with it.
"""
