"""Heron's media service: uploaded files in local or S3-compatible storage, their metadata and
their delivery (`python -m heron_media`)."""
