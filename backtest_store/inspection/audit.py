"""The look-ahead audit: per collection, the documents whose stored `when` is later than a simulation time."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from .. import validation
from ..drivers import Database
from ..errors import InvalidInput
from ..models import Item
from ..wording import plural
from .common import (
    audit_ms,
    extended_json,
    find_documents,
    has_when,
    iso,
    pandas_module,
)
from .render import esc, html_table

AUDIT_LIMIT = 20


@dataclass(frozen=True)
class AuditFinding:
    collection: str
    context_key: tuple[str, ...]
    total: int  # every document later than the audit time
    documents: tuple[dict[str, Any], ...]  # the first `limit` of them by `when`: `_id`, `when`, context fields

    @property
    def more(self) -> int:
        """Later documents that exist but are not listed."""
        return self.total - len(self.documents)

    HEADERS_START: ClassVar[tuple[str, ...]] = ("_id", "when")

    def headers(self) -> tuple[str, ...]:
        return (*self.HEADERS_START, *self.context_key)

    def rows(self) -> list[tuple[str, ...]]:
        return [(str(d.get("_id")), iso(d.get("when")), *(str(d.get(f)) for f in self.context_key))
                for d in self.documents]

    def more_text(self, hint: str = "raise `limit` to see them") -> str:
        return f"… and {self.more} more not listed ({hint})" if self.more else ""


@dataclass(frozen=True, repr=False)
class AuditReport:
    when: int  # the audit time, epoch ms
    limit: int
    findings: tuple[AuditFinding, ...]  # every audited collection, clean ones included

    COUNT_HEADERS: ClassVar[tuple[str, ...]] = ("collection", "later documents", "listed")

    @property
    def total(self) -> int:
        return sum(f.total for f in self.findings)

    @property
    def clean(self) -> bool:
        return self.total == 0

    def __repr__(self) -> str:
        return f"<AuditReport {self.headline()}>"

    def __getitem__(self, collection: str) -> AuditFinding:
        for f in self.findings:
            if f.collection == collection:
                return f
        raise KeyError(collection)

    def headline(self) -> str:
        at = f"{iso(self.when)} ({self.when} ms)"
        if self.clean:
            return f"No stored `when` is later than {at} ({plural(len(self.findings), 'collection')} audited)."
        hit = sum(1 for f in self.findings if f.total)
        return f"Stored `when` later than {at}: {plural(self.total, 'document')} in {plural(hit, 'collection')}."

    def count_rows(self) -> list[tuple[str, ...]]:
        return [(f.collection, str(f.total), str(len(f.documents))) for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return {"when": self.when, "when_iso": iso(self.when), "limit": self.limit, "total": self.total,
                "collections": [{"collection": f.collection, "total": f.total, "more": f.more,
                                 "documents": list(f.documents)} for f in self.findings]}

    def to_json(self, indent: int | None = 2) -> str:
        return extended_json(self.to_dict(), indent)

    def to_dataframe(self, kind: Literal["documents", "counts"] = "documents") -> Any:
        """`documents`: one row per listed document (warns when some are not listed); `counts`: per collection."""
        pd = pandas_module()
        if kind == "counts":
            return pd.DataFrame([{"collection": f.collection, "total": f.total, "listed": len(f.documents),
                                  "more": f.more} for f in self.findings])
        if kind != "documents":
            raise InvalidInput(f"kind must be 'documents' or 'counts', got {kind!r}")
        unlisted = {f.collection: f.more for f in self.findings if f.more}
        if unlisted:
            warnings.warn(f"not every later document is listed (limit={self.limit}): {unlisted} more; "
                          "see to_dataframe('counts')", stacklevel=2)
        rows = [{"collection": f.collection, "_id": str(d.get("_id")), "when": d.get("when"),
                 "when_utc": pd.to_datetime(d.get("when"), unit="ms", utc=True),
                 **{k: d.get(k) for k in f.context_key}} for f in self.findings for d in f.documents]
        return pd.DataFrame(rows, columns=None if rows else ["collection", "_id", "when", "when_utc"])

    def _repr_html_(self) -> str:
        parts = [f"<h4>Look-ahead audit</h4><p>{esc(self.headline())}</p>",
                 html_table(self.COUNT_HEADERS, self.count_rows())]
        for f in self.findings:
            if f.total:
                parts.append(f"<h5>{esc(f.collection)}</h5>" + html_table(f.headers(), f.rows()))
                if f.more:
                    parts.append(f"<p><b>{esc(f.more_text())}</b></p>")
        return "<div>" + "".join(parts) + "</div>"


async def _audit_collection(database: Database, model: type[Item], when: int, limit: int) -> AuditFinding:
    collection = database[model.collection_name()]
    key = model.context_key()
    later = {"when": {"$gt": when}}
    documents: list[dict[str, Any]] = []
    if limit:
        projection = {"_id": 1, "when": 1, **{f: 1 for f in key}}
        documents = await collection.find(later, projection).sort("when", 1).limit(limit).to_list()
    # Counting is only needed when the listing may have stopped short.
    total = len(documents) if len(documents) < limit else await collection.count_documents(later)
    return AuditFinding(model.collection_name(), key, total, tuple(documents))


async def audit(database: Database, when: datetime | int, collection: str | type[Item] | None = None, *,
                limit: int = AUDIT_LIMIT) -> AuditReport:
    """Per collection with a stored `when`, the documents written for a time later than `when`.

    `when` is the simulation time: an aware datetime or epoch ms. At most `limit` documents are listed per
    collection (earliest first); `total` always counts them all. Only the `when` column is checked, not copies
    of it inside payloads.
    """
    at = audit_ms(when)
    limit = validation.integer("limit", limit, minimum=0)
    models = find_documents(collection)
    audited = [m for m in models if has_when(m)]
    if not audited:
        raise InvalidInput(f"{models[0].collection_name()} stores no `when`; nothing to audit")
    findings = await asyncio.gather(*(_audit_collection(database, m, at, limit) for m in audited))
    return AuditReport(at, limit, tuple(findings))
