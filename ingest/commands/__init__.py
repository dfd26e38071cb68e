"""The ``python -m ingest`` commands: serve, dump, simulate, demo, fields."""
