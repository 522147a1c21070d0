"""Data written by the real systems backtest-store serves, for tests (see `tests/fixtures/README.md`).

- `unpack_dump(dest)`: the `./dump` backtest-kit 19.5.0 wrote with its default file persistence.
- `load_ts_original(database, variant)`: the documents and indexes of a database written by the TypeScript
  original (`current`, or `legacy-session`, which keys Session without symbol and mode).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from bson import json_util
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

FIXTURES = Path(__file__).parent / "fixtures"
DUMP_ARCHIVE = FIXTURES / "backtest-kit-19.5-dump.tar.gz"
TS_ORIGINAL = FIXTURES / "ts-original-db"
VARIANTS = ("current", "legacy-session")


def unpack_dump(dest: Path) -> Path:
    """Unpack the real dump under `dest` and return its `dump/` directory."""
    with tarfile.open(DUMP_ARCHIVE) as archive:
        archive.extractall(dest, filter="data")
    return dest / "dump"


def ts_original_documents(variant: str) -> dict[str, list[dict[str, Any]]]:
    """Per collection, the documents as PyMongo decodes them (canonical Extended JSON)."""
    folder = TS_ORIGINAL / variant
    return {path.stem: json_util.loads(path.read_text())
            for path in sorted(folder.glob("*-items.json"))}


def ts_original_indexes(variant: str) -> dict[str, list[dict[str, Any]]]:
    """Per collection, what `listIndexes` returned on the original's database (mongoose's names and options)."""
    return json_util.loads((TS_ORIGINAL / variant / "indexes.json").read_text())


async def load_ts_original(database: AsyncDatabase, variant: str, *, indexes: bool = True) -> dict[str, int]:
    """Insert the original's documents (and create its indexes) into `database`; returns the count per collection."""
    counts = {}
    if indexes:
        for collection, specs in ts_original_indexes(variant).items():
            models = [IndexModel(list(spec["key"].items()), name=spec["name"],
                                 **{k: v for k, v in spec.items() if k in ("unique", "sparse")})
                      for spec in specs if spec["name"] != "_id_"]
            if models:
                await database[collection].create_indexes(models)
    for collection, docs in ts_original_documents(variant).items():
        if docs:
            await database[collection].insert_many(docs)
        counts[collection] = len(docs)
    return counts


if __name__ == "__main__":  # a quick look: python tests/realdata.py
    for variant in VARIANTS:
        print(variant, json.dumps({c: len(d) for c, d in ts_original_documents(variant).items()}))
