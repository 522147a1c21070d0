"""Index management. The runtime never touches indexes; operators and the embedded/test path do, through here.

`plan` compares declared with live indexes, `check` says whether they are in sync, `apply` makes them so;
`legacy_documents` counts what the original wrote under an older key; `read_shard_config` and `analyse` check
the shard keys of a sharded cluster against our unique indexes and calls;
`backtest-store migrate plan|check|apply` is the same from the command line.
"""

from ..errors import MigrationRefused
from .diff import (
    ACTIONS,
    BLOCKING,
    CONFLICT,
    CREATE,
    FOREIGN,
    UNCHANGED,
    IndexChange,
    diff_collection,
    drift,
    keys_text,
    normalize_spec,
    plan,
)
from .indexes import create_indexes
from .legacy import LegacyDocuments, legacy_documents
from .operations import (
    ApplyReport,
    Duplicate,
    Operation,
    apply,
    check,
    find_duplicates,
    operations,
)
from .sharding import ShardConfig, ShardingReport, analyse, read_shard_config

__all__ = [
    "ACTIONS", "BLOCKING", "CONFLICT", "CREATE", "FOREIGN", "UNCHANGED", "ApplyReport", "Duplicate", "IndexChange",
    "LegacyDocuments", "MigrationRefused", "Operation", "apply", "check", "create_indexes", "diff_collection",
    "drift", "find_duplicates", "keys_text", "legacy_documents", "normalize_spec", "operations", "plan",
    "ShardConfig", "ShardingReport", "analyse", "read_shard_config",
]
