"""Heron auth service: users, roles, sessions, API tokens and the keys that sign access tokens."""
