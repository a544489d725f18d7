"""Progress for long work, drawn with rich on a terminal: every phase gets a line, every
byte-moving phase a bar with bytes, throughput and time left (a byte counter when the size
is unknown, as from a pipe), and waits get a spinner with the time spent. Nothing but the
lines when not a TTY; nothing at all with -q or --json (warnings excepted)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.progress import TaskID

# rich is imported only when a terminal shows bars: its import costs some 50 ms, a third of
# what `satchel verify -q` or `satchel status` needs to start.


class Reporter:
    def __init__(self, quiet: bool = False, bars: bool | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.quiet = quiet
        self.bars = (not quiet and sys.stderr.isatty()) if bars is None else bars
        self.log = log

    def step(self, message: str) -> None:
        if self.log:
            self.log(message)
        if not self.quiet:
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        """Something the operator must know: shown even with -q (on stderr, so --json stays clean)."""
        if self.log:
            self.log(f"warning: {message}")
        click.echo(f"satchel: warning: {message}", err=True)

    @contextmanager
    def bar(self, total: int, label: str) -> Iterator[Callable[[int], None]]:
        """`tick(n)` for every n bytes done; `total` 0 or less when the size is unknown."""
        if not self.bars:
            yield lambda n: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        known = total > 0
        columns = [TextColumn("{task.description}"), BarColumn() if known else SpinnerColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn() if known else TimeElapsedColumn()]
        with Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task(label, total=total if known else None)
            yield lambda n: progress.advance(task, n)

    @contextmanager
    def waiting(self, message: str) -> Iterator[Callable[[dict[str, str]], None]]:
        """A line, and on a terminal a spinner with the time spent until the block ends. The
        block may report what it waits on (name -> state) as often as it likes: a line per name
        under the spinner, and each change in the run log."""
        self.step(message)
        seen: dict[str, str] = {}

        def log_changes(states: dict[str, str]) -> None:
            for name, text in sorted(states.items()):
                if self.log and seen.get(name) != text:
                    self.log(f"  {name}: {text}")
            seen.update(states)

        if not self.bars:
            yield log_changes
            return
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(finished_text=" "), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as progress:
            progress.add_task("waiting")
            rows: dict[str, TaskID] = {}

            def show(states: dict[str, str]) -> None:
                log_changes(states)
                for name, text in sorted(states.items()):
                    if name not in rows:
                        rows[name] = progress.add_task("", total=None)
                    progress.update(rows[name], description=f"  {name}: {text}")
            yield show

QUIET = Reporter(quiet=True)
