"""The machine's floors: the least a Python server (and a gRPC hop) can cost here."""
