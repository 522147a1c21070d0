"""The consoles every command prints through, so that a pipe or a file gets the same text a terminal does."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console

# Rich wraps output that is not a terminal at 80 columns, which split paths and URLs mid-word in files, CI logs and
# `| grep`. Without a terminal nothing is wrapped (soft_wrap) and tables get the width their content needs.
PIPE_WIDTH = 1000


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich's own answer exits with 1; `main` ends a command whose reader went away quietly, with 0.
        self.quiet = True
        raise BrokenPipeError


def console(*, stderr: bool = False, **options: Any) -> Console:
    """A rich Console on stdout (or stderr) that does not wrap when it is not a terminal."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    if not stream.isatty():
        options.setdefault("width", PIPE_WIDTH)
        options.setdefault("soft_wrap", True)
    return _Console(stderr=stderr, **options)
