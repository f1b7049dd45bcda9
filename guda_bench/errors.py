"""Exceptions with a meaning for users: the CLI turns them into one line and exit code 2."""


class BenchError(Exception):
    """Bad input or an unusable environment: reported as one line, exit code 2."""


class Unavailable(Exception):  # noqa: N818 - a status, not a crash
    """A method cannot run here (missing weights, no GPU, ...): its row says why."""
