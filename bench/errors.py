"""The one error type the benchmark raises for conditions a person must fix."""


class BenchError(Exception):
    """A setup or run failure, printed without a traceback."""
