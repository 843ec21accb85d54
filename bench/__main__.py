"""Entry point: `python -m bench [flags]` from the repository root."""

from bench.cli import main

if __name__ == "__main__":
    main()
