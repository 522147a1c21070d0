"""Schema inspection and the look-ahead audit, for notebooks (HTML tables, pandas) and the `inspect` command.

Everything here only reads. Counts use `estimatedDocumentCount` (collection metadata) rather than a scan, and
storage sizes come from `$collStats`, then the older `collStats` command; a server with neither shows None.
"""

from .audit import AUDIT_LIMIT, AuditFinding, AuditReport, audit
from .common import audit_ms, extended_json, find_documents, human_size, iso, type_name
from .schema import CollectionSchema, FieldInfo, SchemaReport, schema

__all__ = [
    "AUDIT_LIMIT", "AuditFinding", "AuditReport", "CollectionSchema", "FieldInfo", "SchemaReport", "audit",
    "audit_ms", "extended_json", "find_documents", "human_size", "iso", "schema", "type_name",
]
