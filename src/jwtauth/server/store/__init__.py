"""Persistence: SQLAlchemy tables, queries and Alembic migrations. Only this package
talks SQL; the core above it sees plain values."""

from .database import Database, create_database

__all__ = ["Database", "create_database"]
