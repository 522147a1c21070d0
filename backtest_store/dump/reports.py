"""What an import or an export did: counts per adapter, and the first refusals with their reasons.

Both reports count every refusal and list the first `MAX_LISTED` of them, so a dump of any size gives a report of
bounded size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .layout import LAYOUTS

MAX_LISTED = 100


def printable(text: str) -> str:
    """Text a report can print: a file name that is not UTF-8 reaches Python with surrogate escapes, shown as
    `\\udcff`."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class AdapterImport:
    imported: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0


@dataclass
class AdapterExport:
    written: int = 0
    skipped: int = 0


@dataclass
class Report:
    """The part both directions share: where, how long, and what was refused."""

    path: str
    # The first MAX_LISTED refusals as (what, reason); `skipped` counts them all.
    refused: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0
    adapters: dict[str, Any] = field(default_factory=dict)
    # How a refusal is named in `as_dict()`: a file of the dump, or a document of the database.
    what: ClassVar[str]

    def skip(self, adapter: str, what: str, reason: str) -> None:
        self.adapters[adapter].skipped += 1
        self.skipped += 1
        if len(self.refused) < MAX_LISTED:
            self.refused.append((printable(what), printable(reason)))

    def _common(self) -> dict[str, Any]:
        return {
            "path": self.path, "seconds": round(self.seconds, 3), "skipped": self.skipped,
            "adapters": {name: vars(a) for name, a in self.adapters.items()},
            f"skipped_{self.what}s": [{self.what if self.what == "document" else "path": w, "reason": r}
                                      for w, r in self.refused],
            f"skipped_{self.what}s_truncated": self.skipped > len(self.refused),
        }


@dataclass
class ImportReport(Report):
    what: ClassVar[str] = "file"
    # Entries of the dump that are not persistence data (reports, JSONL logs...), left alone.
    ignored: list[str] = field(default_factory=list)
    files: int = 0

    def __post_init__(self) -> None:
        self.adapters = self.adapters or {layout.name: AdapterImport() for layout in LAYOUTS}

    @property
    def skipped_files(self) -> list[tuple[str, str]]:
        return self.refused

    @property
    def imported(self) -> int:
        return sum(a.imported for a in self.adapters.values())

    @property
    def unchanged(self) -> int:
        return sum(a.unchanged for a in self.adapters.values())

    def as_dict(self) -> dict[str, Any]:
        return {**self._common(), "files": self.files, "imported": self.imported, "unchanged": self.unchanged,
                "ignored": self.ignored}


@dataclass
class ExportReport(Report):
    what: ClassVar[str] = "document"

    def __post_init__(self) -> None:
        self.adapters = self.adapters or {layout.name: AdapterExport() for layout in LAYOUTS}

    @property
    def skipped_documents(self) -> list[tuple[str, str]]:
        return self.refused

    @property
    def written(self) -> int:
        return sum(a.written for a in self.adapters.values())

    def as_dict(self) -> dict[str, Any]:
        return {**self._common(), "written": self.written}
