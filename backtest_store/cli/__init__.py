"""`backtest-store` console command. Each subcommand lives in its own module here and registers itself."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..config import redact
from ..errors import BacktestStoreError
from .interrupt import patched_wait_for

# Module names under backtest_store.cli; each defines `register(subparsers)` and sets `func` on its parser.
COMMANDS = ("demo", "migrate", "inspect", "dump", "serve", "report", "bench")


DESCRIPTION = """MongoDB + Redis persistence for backtest-kit's 17 persistence contracts.

With nothing configured, every command uses embedded servers whose data lives in ./.backtest-store
(--data-dir); set CC_MONGO_CONNECTION_STRING (and CC_REDIS_*) to use your own servers."""
EPILOG = """first steps:
  backtest-store demo              run a simulated backtest and see what it stores
  backtest-store inspect           collections, indexes and counts of the stored data
  backtest-store report            how stored backtests did, per strategy and symbol (--html: plots)
  backtest-store serve             keep the embedded servers running for notebooks, mongosh, redis-cli
  backtest-store COMMAND --help    the options of one command"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backtest-store", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:
        # Also during the imports of the first second: building the parser imports every subcommand.
        print("backtest-store: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`, `--help | head`) having read what it wanted: not a failure. Stop quietly,
        # and keep Python's exit-time flush from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # how the command was asked for (bench's report)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with patched_wait_for():  # so that one Ctrl-C is never lost (see interrupt.py)
            return int(args.func(args) or 0)
    except BacktestStoreError as exc:
        # Errors reach the terminal with any credentials removed.
        print(f"backtest-store: error: {redact(str(exc))}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    sys.exit(main())
