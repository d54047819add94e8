"""Bounded readers of uploaded files: bytes -> text, table rows or JSON values, each within the import limits.

A hostile file must cost a bounded amount of work and memory: a 1.5 KB spreadsheet can declare a cell at
XFD1048576, hold a 200 MB shared string, or 400k rows; a JSON line can nest 100,000 brackets. Every such file
ends here as a refusal (the whole file) or a row error (one line), with a message for the user; nothing here
materialises a whole sheet or pads missing cells. The limits are settings (``IMPORT_MAX_*``).
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import zipfile
from dataclasses import dataclass, field

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from config.errors import Invalid, TooLarge
from glossary.text import count_forbidden_characters, forbidden_character_message

logger = logging.getLogger(__name__)

# Share of forbidden control characters above which a text is taken for a binary file.
_BINARY_CONTROL_SHARE = 0.05
_BINARY_SAMPLE_CHARS = 65536
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class ImportRefused(Invalid):
    """The whole file cannot be imported (too large, unknown format, unreadable, missing columns),
    or an export was asked in an unknown format.

    The message is meant for the user.
    """

    default_code = "refused"


class ImportTooLarge(TooLarge, ImportRefused):
    """The file is over ``IMPORT_MAX_BYTES``."""


class BadRow(Exception):
    """One row cannot be read; the message is the reason shown to the user."""


@dataclass
class RowError:
    """A row that cannot be imported. ``line`` is what the user sees: the CSV line (header = 1), the
    JSONL line, the spreadsheet row, or the 1-based item of a JSON array."""

    line: int
    reason: str


@dataclass
class Table:
    """The data rows of a CSV or XLSX file: (line, {column: text}) with normalised column names."""

    columns: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def max_rows() -> int:
    return settings.IMPORT_MAX_ROWS


def refuse_too_many_rows() -> ImportRefused:
    return ImportRefused(
        _("The file has more than %(max)s lines: split it into several files.") % {"max": max_rows()}
    )


# Text ------------------------------------------------------------------------------------------------


def decode_text(content: bytes, *, fallback: tuple[str, ...] = ()) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with its BOM; then the ``fallback`` encodings (e.g. cp1252)."""
    if content.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8", *fallback)
    for encoding in encodings:
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        _refuse_binary(text)
        return text
    if b"\x00" in content:
        raise ImportRefused(_("This file is not a text file: save it as UTF-8 (or UTF-16 with a BOM)."))
    raise ImportRefused(_("Unreadable file encoding: save it as UTF-8 (or UTF-16 with a BOM)."))


def _refuse_binary(text: str) -> None:
    sample = text[:_BINARY_SAMPLE_CHARS]
    controls = count_forbidden_characters(sample)
    if sample and controls / len(sample) > _BINARY_CONTROL_SHARE:
        raise ImportRefused(
            _("This file is not a text file (too many control characters): save it as UTF-8 (or UTF-16 with a BOM).")
        )


def check_cell(text: str, column: str) -> None:
    """Raise BadRow when a cell is longer than the limit or holds a forbidden character."""
    limit = settings.IMPORT_MAX_CELL_CHARS
    if len(text) > limit:
        raise BadRow(
            _("%(field)s: cell too long (%(length)s characters, at most %(max)s).")
            % {"field": column, "length": len(text), "max": limit}
        )
    problem = forbidden_character_message(text)
    if problem:
        raise BadRow(_("%(field)s: %(message)s") % {"field": column, "message": problem})


# JSON ------------------------------------------------------------------------------------------------


def json_value(text: str):
    """``json.loads`` whose every failure is a BadRow: syntax, nesting too deep, a number too long."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRow(_("Invalid JSON (column %(column)s).") % {"column": error.colno}) from None
    except RecursionError:
        raise BadRow(_("JSON nested too deeply.")) from None
    except ValueError:  # an integer of thousands of digits (Python refuses to convert it)
        raise BadRow(_("Invalid JSON: number too long.")) from None


def json_document(text: str):
    """A whole JSON document; a failure is a refusal that names the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportRefused(_("Invalid JSON (line %(line)s, column %(column)s).") % {"line": error.lineno, "column": error.colno}) from None
    except RecursionError:
        raise ImportRefused(_("JSON nested too deeply (line %(line)s).") % {"line": _deep_line(text)}) from None
    except ValueError:
        raise ImportRefused(_("Invalid JSON: number too long.")) from None


def _deep_line(text: str, depth_limit: int = 500) -> int:
    """The line where the nesting of ``text`` first goes deeper than ``depth_limit`` (to point at it)."""
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > depth_limit:
                return text.count("\n", 0, token.start()) + 1
        elif char in "]}":
            depth -= 1
    return 1


# Tables ----------------------------------------------------------------------------------------------


def read_table(content: bytes, *, file_format: str, required: tuple[str, ...]) -> Table:
    """A CSV or XLSX file as lines of cells; cells too long or with control characters are row errors."""
    if file_format == "xlsx":
        header, records = _xlsx_records(content)
    else:
        header, records = _csv_records(decode_text(content, fallback=("cp1252",)))
    columns = [str(column or "").strip().casefold() for column in header]
    missing = [column for column in required if column not in columns]
    if missing:
        raise ImportRefused(
            _("Missing columns: %(missing)s. Expected columns: %(expected)s.")
            % {"missing": ", ".join(missing), "expected": ", ".join(required)}
        )
    table = Table(columns=columns)
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if len(table.rows) + len(table.errors) >= max_rows():
            raise refuse_too_many_rows()
        try:
            if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns):]):
                raise BadRow(_("%(count)s cells for %(columns)s columns.") % {"count": len(cells), "columns": len(columns)})
            values: dict[str, str] = {}
            for column, cell in zip(columns, cells):
                check_cell(cell, column)
                values.setdefault(column, cell)
        except BadRow as bad:
            table.errors.append(RowError(line, str(bad)))
            continue
        table.rows.append((line, values))
    return table


def _csv_records(text: str):
    header_line = text.split("\n", 1)[0]
    # Spreadsheets set to French export CSV with semicolons.
    separator = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise ImportRefused(_("Malformed CSV file (line 1): %(detail)s") % {"detail": error}) from None
    if header is None:
        raise ImportRefused(_("The file is empty."))
    return header, _csv_rows(reader)


def _csv_rows(reader):
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. a cell over the csv module's own limit (131,072 characters)
            raise ImportRefused(_("Malformed CSV file (line %(line)s): %(detail)s") % {"line": line, "detail": error}) from None
        yield line, cells


def _xlsx_records(content: bytes):
    """The first sheet's rows as they are in the file: missing rows and cells are not created."""
    from openpyxl import load_workbook
    from openpyxl.worksheet._reader import WorkSheetParser

    max_bytes = settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            # Declared sizes bound what zipfile will inflate, so this check holds even against a lying archive.
            uncompressed = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        logger.info("Unreadable xlsx file: %s", error)
        raise ImportRefused(_("Unreadable Excel file: save it in .xlsx format.")) from None
    if uncompressed > max_bytes:
        raise ImportRefused(
            _("The workbook would take %(size)s once decompressed (at most %(max)s): split it or save it as CSV.")
            % {"size": filesizeformat(uncompressed), "max": filesizeformat(max_bytes)}
        )
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
    except Exception as error:  # openpyxl raises many kinds of errors on a damaged file
        logger.info("Unreadable xlsx file: %s", error)
        raise ImportRefused(_("Unreadable Excel file: save it in .xlsx format.")) from None
    _check_dimensions(rows=sheet.max_row or 0, columns=sheet.max_column or 0, label=_("declared"))
    rows = _xlsx_rows(sheet, WorkSheetParser)
    header: list[str] = []
    for line, cells in rows:
        header = cells
        break
    return header, rows


def _xlsx_rows(sheet, parser_class):
    """(row number, cell texts) for the rows present in the sheet's XML, each within the limits."""
    # The private parser is what openpyxl's own read-only sheet uses; called directly it yields only the
    # cells present, where iter_rows() would pad every row to the widest and fill every missing row.
    source = sheet._get_source()
    try:
        parser = parser_class(source, sheet._shared_strings, data_only=True, epoch=sheet.parent.epoch,
                              date_formats=sheet.parent._date_formats, timedelta_formats=sheet.parent._timedelta_formats)
        for row_number, cells in parser.parse():
            if not cells:
                continue
            widest = max(cell["column"] for cell in cells)
            _check_dimensions(rows=row_number, columns=widest, label=_("used"))
            texts = [""] * widest
            for cell in cells:
                texts[cell["column"] - 1] = _cell_text(cell["value"])
            yield row_number, texts
    except ImportRefused:
        raise
    except Exception as error:
        logger.info("Unreadable xlsx sheet: %s", error)
        raise ImportRefused(_("Unreadable Excel file: save it in .xlsx format.")) from None
    finally:
        source.close()


def _check_dimensions(*, rows: int, columns: int, label: str) -> None:
    max_columns = settings.IMPORT_MAX_COLUMNS
    # One header row above the data rows.
    if rows > max_rows() + 1 or columns > max_columns:
        raise ImportRefused(
            _("The sheet's %(label)s dimensions are too large (%(rows)s rows, %(columns)s columns; at most %(max_rows)s rows and %(max_columns)s columns).")
            % {"label": label, "rows": rows, "columns": columns, "max_rows": max_rows() + 1, "max_columns": max_columns}
        )


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
