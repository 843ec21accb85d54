"""Entry point: `python -m heron_media [serve|migrate]` (serve is the default)."""

from __future__ import annotations

from heron_common.service import main

from heron_media.server import SPEC

if __name__ == "__main__":
    main(SPEC)
