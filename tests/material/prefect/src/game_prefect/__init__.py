"""Prefect's own tables (PrefectHQ/prefect, src/prefect/server/database/orm_models.py), as a test service."""
