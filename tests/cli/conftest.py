import pytest


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    """Commands run in-process close database connections when they finish (run_from_argv) and
    between tasks (the worker), as they should in production. Inside a test that would end the
    transaction the test runs in (PostgreSQL; SQLite's in-memory test database ignores it), so
    here the connection stays open."""
    from django.db import connections
    from django_tasks_db.management.commands import db_worker

    from warenhaus.ops.management.commands import wh_worker

    monkeypatch.setattr(connections, "close_all", lambda: None)
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    monkeypatch.setattr(wh_worker, "close_old_connections", lambda: None)
