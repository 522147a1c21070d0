"""Index management. The runtime never touches indexes; operators and the embedded/test path do, through here.

`plan` compares declared with live indexes, `check` says whether they are in sync, `apply` makes them so;
`backtest-store migrate plan|check|apply` is the same from the command line.
"""

from .apply import ApplyReport, Duplicate, MigrationRefused, Operation, apply, check, find_duplicates, operations
from .diff import ACTIONS, CONFLICT, CREATE, DROP, UNCHANGED, IndexChange, diff_collection, drift, normalize_spec, plan
from .indexes import create_indexes

__all__ = [
    "ACTIONS", "CONFLICT", "CREATE", "DROP", "UNCHANGED", "ApplyReport", "Duplicate", "IndexChange",
    "MigrationRefused", "Operation", "apply", "check", "create_indexes", "diff_collection", "drift",
    "find_duplicates", "normalize_spec", "operations", "plan",
]
