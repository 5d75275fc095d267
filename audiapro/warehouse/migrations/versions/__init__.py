"""Warehouse revisions, one file each; written by hand, never generated from ``tables.py``."""
