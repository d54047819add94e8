"""One parser per import format: bytes -> rows (glossary entries before validation) and row errors.

The bytes are read by glossary.readers, within the import limits; every problem of one row is a RowError
with its line, never an exception.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from glossary.exports import LIST_SEPARATOR, restore_formula
from glossary.models import Entry
from glossary.readers import BadRow, RowError, check_cell, decode_text, json_document, json_value, max_rows, read_table, refuse_too_many_rows
from glossary.text import collapse_spaces

REQUIRED_COLUMNS = ("term", "definition")
BERCY_PAIR_TYPES = ("def", "context", "qa")


@dataclass
class Row:
    """One glossary entry as read from a file, before validation."""

    line: int
    term: str = ""
    definition: str = ""
    kind: str = ""
    domain: str = ""
    variants: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    status: str = ""
    source: str = ""
    source_url: str = ""
    split: str = ""


@dataclass
class Parsed:
    rows: list[Row]
    errors: list[RowError]
    total_rows: int


def parse(content: bytes, file_format: str) -> Parsed:
    return _PARSERS[file_format](content)


def _text(value, label: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        check_cell(text, label)
        return text
    raise BadRow(_("%(field)s: text expected.") % {"field": label})


def _text_list(value, label: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRow(_("%(field)s: list expected.") % {"field": label})
    return [_text(item, label) for item in value]


def _examples(value) -> list[dict]:
    label = _("Examples")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json_value(value)
        except BadRow as bad:
            raise BadRow(_("%(field)s: %(message)s") % {"field": label, "message": bad}) from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRow(_("%(field)s: list of {question, answer} objects expected.") % {"field": label})
    # Only texts: a nested value here would be turned into text (and could recurse without end).
    return [{"question": _text(item.get("question"), "question"), "answer": _text(item.get("answer"), "answer")} for item in value]


def _split_cell(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(LIST_SEPARATOR.strip()) if item.strip()]


def _table(content: bytes, *, file_format: str, make_row: Callable[[int, dict], Row], exported_format: bool) -> Parsed:
    table = read_table(content, file_format="xlsx" if file_format == "xlsx" else "csv", required=REQUIRED_COLUMNS)
    rows, errors = [], list(table.errors)
    for line, record in table.rows:
        # Cells of our own export carry a quote before a formula-like text (glossary.exports).
        values = {key: collapse_spaces(restore_formula(value) if exported_format else value) for key, value in record.items()}
        if not any(values.values()):
            continue
        try:
            rows.append(make_row(line, values))
        except BadRow as bad:
            errors.append(RowError(line, str(bad)))
    return Parsed(rows=rows, errors=errors, total_rows=len(rows) + len(errors))


def _plain_table_row(line: int, values: dict) -> Row:
    return Row(
        line=line,
        term=values.get("term", ""),
        definition=values.get("definition", ""),
        kind=values.get("kind", ""),
        domain=values.get("domain", ""),
        variants=_split_cell(values.get("variants", "")),
        contexts=_split_cell(values.get("contexts", "")),
        examples=_examples(values.get("examples", "")),
        status=values.get("status", ""),
        source=values.get("source", ""),
        source_url=values.get("source_url", ""),
        split=values.get("split", ""),
    )


def _sigles_row(line: int, values: dict) -> Row:
    explanation = values.get("explanation", "")
    return Row(
        line=line,
        term=values["term"],
        definition=values["definition"],
        kind=Entry.Kind.ACRONYM,
        contexts=[explanation] if explanation else [],
        source=values.get("source", ""),
        source_url=values.get("url_source", ""),
    )


def _parse_csv(content: bytes) -> Parsed:
    return _table(content, file_format="csv", make_row=_plain_table_row, exported_format=True)


def _parse_xlsx(content: bytes) -> Parsed:
    return _table(content, file_format="xlsx", make_row=_plain_table_row, exported_format=True)


def _parse_sigles(content: bytes) -> Parsed:
    return _table(content, file_format="sigles", make_row=_sigles_row, exported_format=False)


def _json_lines(content: bytes) -> tuple[list[tuple[int, dict]], list[RowError], int]:
    """The objects of a JSONL file with their line numbers, and the lines that are not JSON objects."""
    objects, errors, total = [], [], 0
    # Split on newlines only: JSON strings may hold other Unicode line separators.
    for line, text in enumerate(decode_text(content).split("\n"), start=1):
        if not text.strip():
            continue
        total += 1
        if total > max_rows():
            raise refuse_too_many_rows()
        try:
            value = json_value(text)
            if not isinstance(value, dict):
                raise BadRow(_("The line is not a JSON object."))
        except BadRow as bad:
            errors.append(RowError(line, str(bad)))
            continue
        objects.append((line, value))
    return objects, errors, total


def _parse_jsonl(content: bytes) -> Parsed:
    objects, errors, total = _json_lines(content)
    rows = []
    for line, item in objects:
        try:
            rows.append(
                Row(
                    line=line,
                    term=_text(item.get("term"), "term"),
                    definition=_text(item.get("definition"), "definition"),
                    kind=_text(item.get("kind"), "kind"),
                    domain=_text(item.get("domain"), "domain"),
                    variants=_text_list(item.get("variants"), "variants"),
                    contexts=_text_list(item.get("contexts"), "contexts"),
                    examples=_examples(item.get("examples")),
                    status=_text(item.get("status"), "status"),
                    source=_text(item.get("source"), "source"),
                    source_url=_text(item.get("source_url"), "source_url"),
                    split=_text(item.get("split"), "split"),
                )
            )
        except BadRow as bad:
            errors.append(RowError(line, str(bad)))
    return Parsed(rows=rows, errors=errors, total_rows=total)


def _parse_bercy(content: bytes) -> Parsed:
    """One entry per concept (cluster_id): the def row gives the term and definition, context rows
    the usage contexts, qa rows the example questions."""
    objects, errors, total = _json_lines(content)
    concepts: dict[str, Row] = {}
    definition_lines: dict[str, int] = {}
    for line, item in objects:
        try:
            cluster = collapse_spaces(_text(item.get("cluster_id"), "cluster_id"))
            pair_type = _text(item.get("pair_type"), "pair_type")
            anchor = collapse_spaces(_text(item.get("anchor"), "anchor"))
            positive = collapse_spaces(_text(item.get("positive"), "positive"))
            kind = _text(item.get("anchor_type"), "anchor_type")
            domain = _text(item.get("domain"), "domain")
            if not cluster:
                raise BadRow(_("Missing cluster_id."))
            if pair_type not in BERCY_PAIR_TYPES:
                raise BadRow(_("Unknown pair_type: %(value)s (def, context or qa).") % {"value": pair_type})
            if not anchor or not positive:
                raise BadRow(_("Missing anchor or positive."))
        except BadRow as bad:
            errors.append(RowError(line, str(bad)))
            continue
        concept = concepts.setdefault(cluster, Row(line=line, term=cluster, kind=kind, domain=domain))
        if pair_type == "def":
            if cluster in definition_lines:
                errors.append(RowError(line, _("Second definition for “%(cluster)s” (see line %(first)s).") % {"cluster": cluster, "first": definition_lines[cluster]}))
                continue
            definition_lines[cluster] = line
            # The def row's anchor is the term as written ('sécurité des systèmes d’information'),
            # where cluster_id may be an identifier ('securite_des_systemes_d_information').
            concept.term = anchor
            concept.definition = positive
        elif pair_type == "context":
            concept.contexts.append(positive)
        else:
            concept.examples.append({"question": anchor, "answer": positive})
    return Parsed(rows=list(concepts.values()), errors=errors, total_rows=total)


def _parse_baconnier(content: bytes) -> Parsed:
    from glossary.readers import ImportRefused

    items = json_document(decode_text(content))
    if not isinstance(items, list):
        raise ImportRefused(_("The file must contain a JSON list of {term, definition} objects."))
    if len(items) > max_rows():
        raise refuse_too_many_rows()
    rows, errors = [], []
    for index, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise BadRow(_("The item is not a JSON object."))
            rows.append(
                Row(line=index, term=_text(item.get("term"), "term"), definition=_text(item.get("definition"), "definition"), kind=Entry.Kind.TERM)
            )
        except BadRow as bad:
            errors.append(RowError(index, str(bad)))
    return Parsed(rows=rows, errors=errors, total_rows=len(items))


_PARSERS: dict[str, Callable[[bytes], Parsed]] = {
    "csv": _parse_csv,
    "jsonl": _parse_jsonl,
    "xlsx": _parse_xlsx,
    "sigles": _parse_sigles,
    "bercy": _parse_bercy,
    "baconnier": _parse_baconnier,
}
