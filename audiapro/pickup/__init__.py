"""File pickup: CDR files from an SFTP drop or a mailbox into the file import, exactly once.

``sftp`` and ``imap`` fetch; ``files`` spools and opens archives under caps; ``core`` hands each file
to :func:`audiapro.importing.import_file` and counts what happened. The ledgers are in
``audiapro.warehouse.pickups``. No Prefect here: the ``pickup-files`` flow and the CLI call these.
"""
