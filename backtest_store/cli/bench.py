"""The `bench` command: backtest-store against the TypeScript original's access pattern, the raw floor and a file
store, side by side on the same servers and data (`backtest_store.bench`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from pathlib import Path

from rich.console import Console

from ..bench import SCENARIOS, VARIANTS, BenchOptions, run_bench
from ..bench.report import markdown, render
from ..bench.servers import MONGO_ENV, REDIS_ENV
from ..demo import DEFAULT_MINUTES, DEFAULT_SEED, DEFAULT_SYMBOLS
from . import output
from .connect import positive_int

DEFAULT_MARKDOWN = Path("docs") / "performance.md"
# docs/performance.md's own run: 1,878 s for every design, call and size on 2 cores.
FULL_RUN_MINUTES = 46  # the run behind docs/performance.md: 2,769 s, six designs, on a machine doing other work too
_BY_LETTER = {v.letter: k for k, v in VARIANTS.items()}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _variants(text: str) -> tuple[str, ...]:
    out = []
    for item in text.split(","):
        item = item.strip()
        key = _BY_LETTER.get(item, item)
        if key not in VARIANTS:
            raise argparse.ArgumentTypeError(
                f"unknown design {item!r}: one of {', '.join(f'{v.letter} ({k})' for k, v in VARIANTS.items())}")
        out.append(key)
    return tuple(dict.fromkeys(out))


def _calls(text: str) -> tuple[str, ...]:
    known = [s.key for s in SCENARIOS]
    out = [c.strip() for c in text.split(",") if c.strip()]
    for c in out:
        if c not in known:
            raise argparse.ArgumentTypeError(f"unknown call {c!r}: one of {', '.join(known)}")
    return tuple(out)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(sorted({positive_int(part) for part in text.split(",") if part.strip()}))


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "bench", help="measure backtest-store against the original's access pattern, the raw floor and a file store",
        description="Run each persistence call, and a whole simulated backtest, through six designs side by side on "
                    "the same servers and data: (a) backtest-store, (b) backtest-store with the Redis cache off, "
                    "(c) the TypeScript original's access pattern, (d) the raw floor (PyMongo + redis-py doing "
                    "backtest-store's round trips and nothing else), (e) a file store like backtest-kit's default, "
                    "(f) the minimal client a user would write instead (plain PyMongo, one round trip by unique key, "
                    "no Redis). Reports round trips, client CPU and wall time per call, peak RSS, and ratios to (d), "
                    "(f) and (c), with the spread of the block ratios. "
                    f"Starts its own embedded servers unless {MONGO_ENV} (and {REDIS_ENV}) name others.",
        epilog=f"The full run takes about {FULL_RUN_MINUTES} minutes on 2 cores (the run behind {DEFAULT_MARKDOWN}); "
               "--no-backtest --budget 0.2 --sizes 1,100 gives a first look in a few minutes. It writes no file "
               f"unless asked: --markdown {DEFAULT_MARKDOWN} regenerates the repository's page.")
    parser.add_argument("--variants", type=_variants, default=tuple(VARIANTS), metavar="LIST",
                        help=f"designs to run, by letter or name (default: {','.join(v.letter for v in VARIANTS.values())})")
    parser.add_argument("--calls", type=_calls, default=tuple(s.key for s in SCENARIOS), metavar="LIST",
                        help=f"calls to measure (default: all: {', '.join(s.key for s in SCENARIOS)})")
    parser.add_argument("--sizes", type=_sizes, default=None, metavar="LIST",
                        help="sizes for every call, e.g. 1,100 (default: each call's own: 1, its usual size, 10,000)")
    parser.add_argument("--budget", type=_seconds, default=2.0, metavar="SECONDS",
                        help="time spent measuring each design's call at each size (default 2)")
    parser.add_argument("--max-call", type=_seconds, default=30.0, metavar="SECONDS",
                        help="skip a larger size when the previous one, scaled up, would take longer (default 30)")
    parser.add_argument("--no-calls", action="store_true", help="only the whole backtest")
    parser.add_argument("--no-backtest", action="store_true", help="only the calls")
    parser.add_argument("--symbols", type=positive_int, default=DEFAULT_SYMBOLS, metavar="N",
                        help=f"symbols in the whole backtest (default {DEFAULT_SYMBOLS})")
    parser.add_argument("--minutes", type=positive_int, default=DEFAULT_MINUTES, metavar="N",
                        help=f"one-minute ticks per symbol in the whole backtest (default {DEFAULT_MINUTES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--backtest-timeout", type=_seconds, default=3600.0, metavar="SECONDS",
                        help="stop a design's backtest after this long (default 3600)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout (nothing else)")
    parser.add_argument("--markdown", metavar="PATH", default=None,
                        help=f"also write the report there as Markdown (e.g. {DEFAULT_MARKDOWN}); default: no file")
    # Kept so that older command lines still run: no file is written unless --markdown asks for one.
    parser.add_argument("--no-markdown", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = output.console(stderr=True)
    if _is_full_run(args):
        info.print(f"[dim]bench:[/] every design, call and size: about {FULL_RUN_MINUTES} minutes on 2 cores "
                   "(Ctrl-C stops it; `backtest-store bench --help` for a shorter run)", highlight=False)
    options = BenchOptions(
        variants=args.variants, calls=() if args.no_calls else args.calls, sizes=args.sizes, budget_s=args.budget,
        max_call_s=args.max_call, backtest=not args.no_backtest, symbols=args.symbols, minutes=args.minutes,
        seed=args.seed, backtest_timeout_s=args.backtest_timeout,
        progress=lambda text: info.print(f"[dim]bench:[/] {text}", highlight=False))
    result = asyncio.run(run_bench(options))
    command = "backtest-store " + " ".join(shlex.quote(a) for a in getattr(args, "argv", None) or sys.argv[1:])
    result["command"] = command
    path = Path(args.markdown) if args.markdown and not args.no_markdown else None
    if path is not None:
        path.write_text(markdown(result, command))
        info.print(f"[dim]bench:[/] wrote {path}", highlight=False)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        render(result, output.console())
    return 0


def _is_full_run(args: argparse.Namespace) -> bool:
    return (not args.no_calls and not args.no_backtest and args.sizes is None and args.budget >= 2.0
            and len(args.variants) == len(VARIANTS) and len(args.calls) == len(SCENARIOS))
