"""CDR push (the UCM's "CDR Real-time Output"): body parsing, the loader behind the receiver.

Plain Python: the admin API (``audiapro.api.app``) receives and authenticates, this package turns a
stored body into raw legs (:mod:`audiapro.push.parse`) and loads them in small batches off the
request path (:mod:`audiapro.push.loader`).
"""
