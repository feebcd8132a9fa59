"""Persistent state: apps (and later members and counters) in SQLite or PostgreSQL."""

from qqavatar.store.apps import AppRecord, AppRegistry, AppStore
from qqavatar.store.db import make_engine, migrate

__all__ = ["AppRecord", "AppRegistry", "AppStore", "make_engine", "migrate"]
