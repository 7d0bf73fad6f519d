"""The one exception the benchmark raises for a person to read."""


class BenchmarkError(RuntimeError):
    """A benchmark could not run: the message says what failed and what to do."""
