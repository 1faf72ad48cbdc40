"""Persistence: one SQL database (SQLite, PostgreSQL, MariaDB/MySQL) behind small interfaces."""

from heron.store.accounts import SqlAccountStore
from heron.store.database import Database, async_url

__all__ = ["Database", "SqlAccountStore", "async_url"]
