"""Heron shared infrastructure: settings, logging, errors, gRPC helpers and database sessions."""
