"""The `heron` command: run, migrate and operate a Heron installation."""
