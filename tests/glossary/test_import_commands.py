import io
import json

import openpyxl
import pytest
from django.core.management import CommandError, call_command

from glossary.models import Entry, ImportBatch
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def bad_csv(tmp_path):
    path = tmp_path / "glossaire.csv"
    path.write_text("term,definition\nCAF,Caisse d'allocations familiales\nARS,\n,Sans terme\n", encoding="utf-8")
    return path


def test_import_prints_each_bad_row_and_fails_without_importing(bad_csv):
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("import_glossary", str(bad_csv), "--format", "csv", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("line 3: ") and "definition" in lines[0]  # commands speak English
    assert lines[1].startswith("line 4: ") and "term" in lines[1]
    assert "Nothing imported" in str(info.value)
    assert Entry.objects.count() == 0


def test_import_with_skip_invalid_imports_the_rest_with_options(bad_csv):
    output = _run("import_glossary", str(bad_csv), "--format", "csv", "--skip-invalid", "--domain", "Social", "--status", "validated", "--split", "train")

    assert "line 3: " in output
    assert "created 1" in output
    caf = Entry.objects.get()
    assert (caf.term, caf.domain.name, caf.status, caf.split, caf.split_pinned) == ("CAF", "Social", "validated", "train", True)
    assert caf.import_batch.file_name == "glossaire.csv"


def test_import_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"term": "TVA", "definition": "Taxe sur la valeur ajoutée"}) + "\n", encoding="utf-8")

    output = _run("import_glossary", str(path), "--format", "jsonl", "--dry-run")

    assert "Dry run" in output and "would create 1" in output
    assert Entry.objects.count() == 0 and ImportBatch.objects.count() == 0


def test_import_refused_file_exits_with_the_reason(tmp_path, settings):
    path = tmp_path / "g.csv"
    path.write_text("term,definition\nTVA,Taxe\n", encoding="utf-8")
    settings.IMPORT_MAX_BYTES = 5
    with pytest.raises(CommandError, match="too large"):
        call_command("import_glossary", str(path), "--format", "csv")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_glossary", str(tmp_path / "missing.csv"), "--format", "csv")


def test_export_to_stdout_and_to_files_reads_back(tmp_path):
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales", domain=DomainFactory(name="Social"), variants=["Caf"])

    csv_text = _run("export_glossary", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("term,definition,domain,kind,variants,contexts")
    assert "CAF,Caisse d'allocations familiales,Social,acronym,Caf," in csv_text
    jsonl_text = _run("export_glossary", "--format", "jsonl")
    assert json.loads(jsonl_text)["variants"] == ["Caf"]

    target = tmp_path / "glossaire.xlsx"
    _run("export_glossary", "--format", "xlsx", "--output", str(target))
    sheet = openpyxl.load_workbook(target).active
    assert [cell.value for cell in sheet[2]][:3] == ["CAF", "Caisse d'allocations familiales", "Social"]

    with pytest.raises(CommandError, match="--output"):
        call_command("export_glossary", "--format", "xlsx")
