"""Move data between a backtest-kit `./dump` directory (the framework's default file backend) and the store.

- `import_dump(store, path)`: upsert every persistence file of a dump; idempotent and streaming.
- `export_dump(store, path)`: write every stored document back as a dump the JavaScript framework reads.

The path rules for both directions live in `layout` (one `Layout` per adapter); JSON and atomic writes in
`jsonfile`; names in `names`; what a dump says about `_`-joined names in `hints`; the reports in
`reports`.
"""

from ..errors import DumpError
from .exporter import export_dump
from .importer import import_dump
from .layout import ADAPTER_NAMES, LAYOUTS
from .reports import AdapterExport, AdapterImport, ExportReport, ImportReport

__all__ = ["ADAPTER_NAMES", "LAYOUTS", "AdapterExport", "AdapterImport", "DumpError", "ExportReport",
           "ImportReport", "export_dump", "import_dump"]
