"""Every hostile file of the adversarial probe (issue 16), generated here and small, through the three doors of
an import: the UI preview, the API and the command. None may answer 500; each ends as a line-numbered row error
or a whole-file refusal that says why; nothing is written when the import is refused."""
from __future__ import annotations

import io
import json
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from glossary.models import Domain, Entry, ImportBatch

pytestmark = pytest.mark.django_db

ROW_LIMIT = 50
CELL_LIMIT = 5000


@pytest.fixture(autouse=True)
def _small_limits(settings):
    """The limits are settings: lowered here so that the files stay small."""
    settings.IMPORT_MAX_ROWS = ROW_LIMIT
    settings.IMPORT_MAX_CELL_CHARS = CELL_LIMIT
    settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = 512 * 1024
    settings.ENTRY_MAX_LIST_ITEMS = 200


def _xlsx(rows: list[list], *, far_cell: str | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    if far_cell:
        sheet[far_cell] = "x"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_bomb() -> bytes:
    """A valid workbook whose sheet XML inflates to megabytes from a few kilobytes."""
    original = _xlsx([["term", "definition"], ["A", "B"]])
    source = zipfile.ZipFile(io.BytesIO(original))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</worksheet>", b"<!--" + b" " * (4 * 1024 * 1024) + b"--></worksheet>")
            target.writestr(info.filename, data)
    return buffer.getvalue()


def _jsonl(*lines: str) -> bytes:
    return "\n".join(lines).encode()


DEEP = "[" * 100_000 + "]" * 100_000
GOOD_LINE = json.dumps({"term": "CAF", "definition": "Caisse d'allocations familiales"})
BERCY_GOOD = json.dumps({"cluster_id": "caf", "pair_type": "def", "anchor": "CAF", "positive": "Caisse d'allocations familiales"})

# name -> (format, content, expected): ("line", N, words in the reason) or ("refused", words in the message).
HOSTILE = {
    "xlsx-cell-at-XFD1048576": ("xlsx", lambda: _xlsx([["term", "definition"], ["A", "B"]], far_cell="XFD1048576"), ("refused", "Dimensions")),
    "xlsx-huge-cell": ("xlsx", lambda: _xlsx([["term", "definition"], ["A", "x" * (CELL_LIMIT + 1)]]), ("line", 2, "cellule trop longue")),
    "xlsx-too-many-rows": ("xlsx", lambda: _xlsx([["term", "definition"], *[[f"T{i}", "D"] for i in range(ROW_LIMIT + 5)]]), ("refused", "56 lignes")),
    "xlsx-inflates-to-megabytes": ("xlsx", _xlsx_bomb, ("refused", "décompressé")),
    "csv-too-many-rows": ("csv", lambda: ("term,definition\n" + "T,D\n" * (ROW_LIMIT + 1)).encode(), ("refused", "plus de 50 lignes")),
    "jsonl-deeply-nested": ("jsonl", lambda: _jsonl(GOOD_LINE, '{"term": "A", "definition": "B", "examples": ' + DEEP + "}"), ("line", 2, "imbriqué")),
    "bercy-deeply-nested": ("bercy", lambda: _jsonl(BERCY_GOOD, DEEP), ("line", 2, "imbriqué")),
    "baconnier-deeply-nested": ("baconnier", lambda: ('[\n{"term": "A", "definition": "B"},\n' + DEEP + "\n]").encode(), ("refused", "ligne 3")),
    "csv-examples-deeply-nested": ("csv", lambda: ("term,definition,examples\nA,B," + "[" * 3000 + "\n").encode(), ("line", 2, "imbriqué")),
    "jsonl-5000-digit-integer": ("jsonl", lambda: _jsonl(GOOD_LINE, '{"term": ' + "9" * 5000 + ', "definition": "B"}'), ("line", 2, "nombre trop long")),
    "jsonl-lone-surrogate": ("jsonl", lambda: _jsonl(GOOD_LINE, '{"term": "A\\ud800", "definition": "B"}'), ("line", 2, "U+D800")),
    "jsonl-nul-escape": ("jsonl", lambda: _jsonl(GOOD_LINE, '{"term": "A", "definition": "B\\u0000C"}'), ("line", 2, "U+0000")),
    "bercy-nul-escape": ("bercy", lambda: _jsonl(BERCY_GOOD, json.dumps({"cluster_id": "x", "pair_type": "def", "anchor": "X\u0000", "positive": "Y"})), ("line", 2, "U+0000")),
    "baconnier-surrogate": ("baconnier", lambda: b'[{"term": "A", "definition": "B"}, {"term": "\\udfff", "definition": "B"}]', ("line", 2, "U+DFFF")),
    "csv-raw-nul": ("csv", lambda: b"term,definition\nCAF,Caisse d'allocations familiales\nA\x00B,Une d\xc3\xa9finition assez longue pour un vrai texte\n", ("line", 3, "U+0000")),
    "csv-control-character": ("csv", lambda: "term,definition\nA\x07,B\n".encode(), ("line", 2, "U+0007")),
    "sigles-control-character": ("sigles", lambda: "term,definition\nA,B\x0c\n".encode(), ("line", 2, "U+000C")),
    "jsonl-50k-variants": ("jsonl", lambda: _jsonl(json.dumps({"term": "A", "definition": "B", "variants": [f"v{i}" for i in range(50_000)]})), ("line", 1, "Au plus 200")),
    "binary-garbage": ("jsonl", lambda: bytes(range(256)) * 4, ("refused", "texte")),
    "utf16-without-bom": ("csv", lambda: "term,definition\nA,B\n".encode("utf-16-le"), ("refused", "texte")),
}


def _check_report(errors: list[dict], expected) -> None:
    _kind, line, words = expected
    assert any(error["line"] == line and words in error["reason"] for error in errors), errors


def _check_refusal(message: str, expected) -> None:
    assert expected[1] in message, message


# The command speaks English: the words of its reason where they differ from the French ones above.
IN_ENGLISH = {
    "xlsx-cell-at-XFD1048576": "dimensions",
    "xlsx-huge-cell": "cell too long",
    "xlsx-too-many-rows": "56 rows",
    "xlsx-inflates-to-megabytes": "decompressed",
    "csv-too-many-rows": "more than 50 lines",
    "jsonl-deeply-nested": "nested",
    "bercy-deeply-nested": "nested",
    "baconnier-deeply-nested": "line 3",
    "csv-examples-deeply-nested": "nested",
    "jsonl-5000-digit-integer": "number too long",
    "jsonl-50k-variants": "At most 200",
    "binary-garbage": "text",
    "utf16-without-bom": "text",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_through_the_command(name, tmp_path):
    file_format, make, expected = HOSTILE[name]
    if name in IN_ENGLISH:
        expected = (*expected[:-1], IN_ENGLISH[name])
    path = tmp_path / f"hostile.{file_format}"
    path.write_bytes(make())
    for extra in (["--dry-run"], []):
        out = io.StringIO()
        with pytest.raises(CommandError) as info:
            call_command("import_glossary", str(path), "--format", file_format, *extra, stdout=out)
        if expected[0] == "line":
            assert f"line {expected[1]}: " in out.getvalue() and expected[2] in out.getvalue()
        else:
            _check_refusal(str(info.value), expected)
    assert not Entry.objects.exists() and not Domain.objects.exists()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_through_the_api(name, api_client, expert, django_capture_on_commit_callbacks):
    api_client.force_authenticate(expert)
    file_format, make, expected = HOSTILE[name]
    content = make()
    for dry_run in ("true", "false"):
        data = {"file": SimpleUploadedFile(f"hostile.{file_format}", content), "format": file_format, "dry_run": dry_run}
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.post("/api/imports/", data, format="multipart")
        assert response.status_code in (200, 202, 400), response.content[:300]
        body = response.json()
        if response.status_code == 202:  # spreadsheets go to the worker: follow the batch
            batch = api_client.get(body["url"]).json()
            assert batch["status"] in ("previewed", "failed")
            if expected[0] == "line":
                _check_report(batch["report"]["errors"], expected)
            else:
                _check_refusal(batch["error"], expected)
        elif expected[0] == "line":
            _check_report(body["errors"], expected)
        else:
            assert response.status_code == 400 and body["code"] == "refused"
            _check_refusal(body["reason"], expected)
    assert not Entry.objects.exists() and not Domain.objects.exists()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_through_the_ui_preview(name, expert_client, django_capture_on_commit_callbacks):
    file_format, make, expected = HOSTILE[name]
    data = {"file": SimpleUploadedFile(f"hostile.{file_format}", make()), "file_format": file_format, "domain": "", "status": "draft", "split": ""}
    with django_capture_on_commit_callbacks(execute=True):
        response = expert_client.post(reverse("glossary:import-upload"), data)
    if response.status_code == 302:  # previewed by the worker: the page polls the batch
        assert file_format == "xlsx"
        response = expert_client.get(response["Location"])
    assert response.status_code == 200
    body = response.content.decode()
    if expected[0] == "line":
        assert f"<td>{expected[1]}</td>" in body and expected[2] in body
    else:
        form = response.context.get("form")
        message = " ".join(form.errors["file"]) if form is not None else response.context["batch"].error
        _check_refusal(message, expected)
        assert "import-batch-status" not in body
    assert not Entry.objects.exists() and not Domain.objects.exists()


def test_spreadsheet_preview_runs_in_the_worker_and_the_page_polls_until_it_is_ready(expert_client, django_capture_on_commit_callbacks):
    content = _xlsx([["term", "definition"], ["CAF", "Caisse d'allocations familiales"], ["ARS", None]])
    data = {"file": SimpleUploadedFile("g.xlsx", content), "file_format": "xlsx", "domain": "", "status": "draft", "split": ""}
    # Without running the worker, the page waits for it (and polls).
    response = expert_client.post(reverse("glossary:import-upload"), data)
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("glossary:import-preview", args=[batch.pk])
    assert batch.status == ImportBatch.Status.QUEUED and batch.options["dry_run"] is True
    waiting = expert_client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in waiting
    # The session names the batch, never holds the file.
    pending = expert_client.session["glossary_pending_import"]
    assert set(pending) == {"token", "batch_id"}

    from glossary.imports import import_batch_run

    import_batch_run(batch_id=batch.pk)
    ready = expert_client.get(response["Location"])
    body = ready.content.decode()
    assert "<td>3</td>" in body and "La définition est obligatoire." in body and "CAF" in body
    assert not Entry.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = expert_client.post(reverse("glossary:import-confirm"), {"token": ready.context["confirm_form"]["token"].value(), "skip_invalid": "on"})
    assert confirmed["Location"] == reverse("glossary:import-detail", args=[batch.pk])
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.IMPORTED
    assert list(Entry.objects.values_list("term", flat=True)) == ["CAF"]


def test_text_preview_keeps_the_file_out_of_the_session(expert_client):
    content = b"term,definition\nCAF,Caisse d'allocations familiales\n" + b"X,Y\n" * 10
    data = {"file": SimpleUploadedFile("g.csv", content), "file_format": "csv", "domain": "", "status": "draft", "split": ""}
    expert_client.post(reverse("glossary:import-upload"), data)
    pending = expert_client.session["glossary_pending_import"]
    assert "content" not in pending and pending["stored_path"].startswith("imports/pending/")
    assert len(json.dumps(pending)) < 500


@pytest.mark.parametrize("encoding,bom", [("utf-16-le", "\ufeff"), ("utf-16-be", "\ufeff"), ("utf-8", "\ufeff"), ("utf-8", "")])
def test_utf16_and_utf8_text_files_are_read(encoding, bom):
    from glossary.imports import import_file

    content = (bom + "term,definition\nÉlysée,Palais de la présidence\n").encode(encoding)
    report = import_file(content=content, file_name="g.csv", file_format="csv")
    assert report.imported and Entry.objects.get().term == "Élysée"
