"""Alembic migration history of the content service."""
