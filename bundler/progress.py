"""Progress for long work: bars on a terminal, nothing when quiet or not a TTY."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


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
        if not self.bars or total <= 0:
            yield lambda n: None
            return
        with click.progressbar(length=total, label=label, file=sys.stderr,
                               show_pos=False, show_percent=True, show_eta=True) as bar:
            yield bar.update


QUIET = Reporter(quiet=True)
