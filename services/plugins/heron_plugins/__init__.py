"""Heron plugins service."""
