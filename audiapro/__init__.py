"""AudiaPro call-data pipeline: plain-Python core (no Prefect imports below this package)."""

__version__ = "0.1.0"
