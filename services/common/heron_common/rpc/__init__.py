"""gRPC: channels and calls, the server bootstrap, the peers' forwarded addresses."""
