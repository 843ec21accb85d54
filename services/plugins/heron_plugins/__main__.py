"""Entry point: `python -m heron_plugins [serve|migrate]` (serve is the default)."""

from __future__ import annotations

from heron_common.service import main

from heron_plugins.server import SPEC

if __name__ == "__main__":
    main(SPEC)
