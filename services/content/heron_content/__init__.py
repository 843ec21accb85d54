"""Heron content service: collections, items, validation."""
