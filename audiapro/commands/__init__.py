"""Sub-command groups of the ``audiapro`` CLI, one module per area; each exposes ``register(app)``."""
