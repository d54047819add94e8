"""Property-based tests of the importers: whatever the file, a clear answer and never half an import.

Any bytes, any Unicode, empty files, huge lines, malformed CSV / JSON / JSONL / XLSX: ``import_file`` either
returns a report (rows refused with their line and reason) or raises ``ImportRefused`` with a message. It never
raises anything else, and the glossary gains exactly the entries the report says it created (all or nothing).
"""
from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from glossary import imports
from glossary.models import Entry, ImportBatch

pytestmark = pytest.mark.django_db

BOUNDED = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
TEXT = st.text(max_size=60)
CELL = st.one_of(TEXT, st.sampled_from(["", " ", "acronym", "term", "validated", "draft", "test", "train", "a | b", "[]", "{}", "=1+1", "\x00"]))
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.sampled_from(imports.COLUMNS + ("x",)), children, max_size=6)),
    max_leaves=12,
)
ROW = st.fixed_dictionaries({}, optional={column: CELL for column in imports.COLUMNS})


def _csv(header: list[str], rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _xlsx(header: list[str], rows: list[dict]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        # Spreadsheets cannot hold control characters: openpyxl refuses to write them.
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", row.get(column, "")) for column in header])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


HEADERS = st.lists(st.sampled_from(imports.COLUMNS + ("extra",)), min_size=1, max_size=8, unique=True).map(
    lambda columns: columns if "term" in columns and "definition" in columns else ["term", "definition", *columns]
)
CSV_FILES = st.one_of(
    st.builds(_csv, HEADERS, st.lists(ROW, max_size=8)),
    st.lists(st.lists(TEXT, max_size=5), max_size=6).map(lambda rows: "\n".join(",".join(cells) for cells in rows).encode()),
    st.text(max_size=400).map(lambda text: text.encode("utf-8", "surrogatepass")),
)
JSONL_FILES = st.one_of(
    st.lists(JSON_VALUE, max_size=8).map(lambda values: "\n".join(json.dumps(value, ensure_ascii=False) for value in values).encode()),
    st.lists(st.one_of(TEXT, st.just("{"), st.just('{"term": "A"')), max_size=6).map(lambda lines: "\n".join(lines).encode()),
    JSON_VALUE.map(lambda value: json.dumps(value).encode()),
)
XLSX_FILES = st.one_of(
    st.builds(_xlsx, HEADERS, st.lists(ROW, max_size=5)),
    st.binary(max_size=300).map(lambda data: b"PK\x03\x04" + data),
)
ANY_BYTES = st.binary(max_size=600)
ENCODED_TEXT = st.tuples(st.text(max_size=200), st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252"])).map(
    lambda pair: pair[0].encode(pair[1], errors="replace")
)


def import_once(*, content: bytes, file_format: str, skip_invalid: bool) -> None:
    """The property: a report or a refusal, and the entries counted before and after agree with the report."""
    entries_before = Entry.objects.count()
    try:
        report = imports.import_file(content=content, file_name=f"fichier.{file_format}", file_format=file_format, skip_invalid=skip_invalid)
    except imports.ImportRefused as refusal:
        assert str(refusal).strip(), "a refusal says why"
        assert Entry.objects.count() == entries_before, "a refused file imports nothing"
        return
    created = Entry.objects.count() - entries_before
    assert all(error.line >= 1 and error.reason.strip() for error in report.errors)
    if report.imported:
        assert created == report.created
        assert ImportBatch.objects.with_status(ImportBatch.Status.IMPORTED).filter(pk=report.batch_id).exists()
    else:
        assert created == 0, "an import refused for invalid rows imports none of them"
        assert report.errors and not skip_invalid


@BOUNDED
@given(content=CSV_FILES, skip_invalid=st.booleans(), file_format=st.sampled_from(["csv", "sigles"]))
def test_csv_files_import_whole_or_not_at_all(content, skip_invalid, file_format):
    import_once(content=content, file_format=file_format, skip_invalid=skip_invalid)


@BOUNDED
@given(content=JSONL_FILES, skip_invalid=st.booleans(), file_format=st.sampled_from(["jsonl", "bercy", "baconnier"]))
def test_json_files_import_whole_or_not_at_all(content, skip_invalid, file_format):
    import_once(content=content, file_format=file_format, skip_invalid=skip_invalid)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=XLSX_FILES, skip_invalid=st.booleans())
def test_xlsx_files_import_whole_or_not_at_all(content, skip_invalid):
    import_once(content=content, file_format="xlsx", skip_invalid=skip_invalid)


@BOUNDED
@given(content=st.one_of(ANY_BYTES, ENCODED_TEXT, st.just(b""), st.just(b"   \n\n")), file_format=st.sampled_from(imports.FORMATS))
def test_any_bytes_in_any_format_get_a_clear_answer(content, file_format):
    import_once(content=content, file_format=file_format, skip_invalid=False)


@pytest.mark.parametrize("file_format", imports.FORMATS)
def test_huge_lines_get_a_clear_answer(file_format):
    huge = "A" * 300_000
    for content in (
        f"term,definition\n{huge},{huge}\n".encode(),
        json.dumps({"term": huge, "definition": huge, "anchor": huge, "positive": huge, "pair_type": "def"}).encode(),
        huge.encode(),
    ):
        import_once(content=content, file_format=file_format, skip_invalid=True)
    assert not Entry.objects.filter(term=huge).exists(), "a term longer than its column is refused"
