"""Rich progress bars for every long stage; silent when the run is quiet (tests, --quiet)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
_state = {"enabled": True}


def set_enabled(enabled: bool) -> None:
    _state["enabled"] = enabled


def enabled() -> bool:
    return bool(_state["enabled"])


def log(message: str) -> None:
    """One line for the user (on stderr so stdout stays machine-readable)."""
    if _state["enabled"]:
        console.print(message, highlight=False)


@contextmanager
def bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable that moves a rich progress bar (or does nothing when quiet)."""
    if not _state["enabled"]:
        yield lambda n=1: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
