"""CDR insights (daily KPIs, callback worklist, repeat callers) and toll-fraud rules.

Plain functions over call frames read from the warehouse; no Prefect here. ``service`` ties them to
the warehouse (``audiapro.warehouse.insights``), ``report`` renders them as markdown and text.
"""
