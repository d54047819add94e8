"""Labelled questions: recording (idempotent), from flags and accepted answers, import, the flag's life, views, API."""
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from glossary.models import Entry
from retrieval import flags, indexing, labelled, labelled_import, selectors
from retrieval.models import Flag, LabelledQuestion, QuestionLog
from retrieval.question_kinds import is_held_out, normalise_question
from tests.factories import EntryFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _log(question: str, *entry_ids: int) -> QuestionLog:
    return QuestionLog.objects.create(
        question=question, version=selectors.champion_version_get(),
        hits=[{"entry_id": entry_id, "term": "", "rank": rank} for rank, entry_id in enumerate(entry_ids, start=1)],
    )


def test_record_is_idempotent_per_normalised_question_and_entry(glossary, expert):
    caf, tva = glossary["caf"], glossary["tva"]
    first = labelled.labelled_question_record(text="Que veut dire CAF ?", entry=caf, source="exam", user=expert, wrong_entry_ids=[tva.pk])
    again = labelled.labelled_question_record(text="que veut dire  caf", entry=caf, source="flag", wrong_entry_ids=[glossary["urssaf"].pk, caf.pk])
    assert again.pk == first.pk and LabelledQuestion.objects.count() == 1
    assert again.source == "exam" and again.wrong_entry_ids == [tva.pk, glossary["urssaf"].pk]  # the entry itself is never a negative
    assert first.kind == "acronym" and first.kind_set_by == "rules"
    assert first.held_out == is_held_out(normalise_question("Que veut dire CAF ?"))
    # Another entry for the same question is another labelled question.
    labelled.labelled_question_record(text="que veut dire CAF", entry=tva, source="exam")
    assert LabelledQuestion.objects.count() == 2
    with pytest.raises(ValidationError):
        labelled.labelled_question_record(text="   ", entry=caf, source="exam")
    with pytest.raises(ValidationError):
        labelled.labelled_question_record(text="x", entry=caf, source="exam", kind="poem")


def test_recording_a_question_makes_it_a_passage_of_its_entry(glossary):
    caf = glossary["caf"]
    labelled.labelled_question_record(text="l'organisme qui verse les allocations familiales", entry=caf, source="exam")
    passages = indexing._passages_of(Entry.objects.get(pk=caf.pk))
    assert [(p.passage_type, p.position, p.text) for p in passages if p.passage_type == "question"] == [
        ("question", 1, "l'organisme qui verse les allocations familiales")
    ]


def test_flag_correction_records_the_question_and_the_flag_is_corrected(glossary, expert):
    caf, tva, urssaf = glossary["caf"], glossary["tva"], glossary["urssaf"]
    flag = flags.flag_create(question_log=_log("qui encaisse mes cotisations ?", caf.pk, tva.pk, urssaf.pk), user=expert, reason="wrong_entry", correct_entry=urssaf)
    question = LabelledQuestion.objects.get()
    assert (question.text, question.entry, question.source, question.flag, question.wrong_entry_ids) == (
        "qui encaisse mes cotisations ?", urssaf, "flag", flag, [caf.pk, tva.pk]
    )
    assert flag.status == Flag.Status.CORRECTED and flag.corrected_at is not None
    # Without a right entry, nothing is learnt and the flag stays open.
    other = flags.flag_create(question_log=_log("question vague", caf.pk), user=expert, reason="bad_wording")
    assert other.status == Flag.Status.OPEN and LabelledQuestion.objects.count() == 1


def test_mark_used_then_check_version_tells_the_flag_life(glossary, expert):
    caf, urssaf = glossary["caf"], glossary["urssaf"]
    right = flags.flag_create(question_log=_log("que veut dire URSSAF", caf.pk, urssaf.pk), user=expert, reason="wrong_entry", correct_entry=urssaf)
    wrong = flags.flag_create(question_log=_log("le taux normal sur les ventes", caf.pk), user=expert, reason="wrong_entry", correct_entry=glossary["pension"])
    ids = list(LabelledQuestion.objects.values_list("pk", flat=True))
    held_out = set(LabelledQuestion.objects.filter(held_out=True).values_list("pk", flat=True))

    marked = labelled.labelled_questions_mark_used(run_id=7, ids=ids)
    assert marked == len(ids) - len(held_out)
    report = flags.flags_check_version(version=selectors.champion_version_get())

    right.refresh_from_db()
    wrong.refresh_from_db()
    assert right.status == Flag.Status.ANSWERED and right.answered_right and right.checked_rank == 1
    # The model alone (known questions left out) does not tie a pension to sales tax: back in the review queue.
    assert wrong.status == Flag.Status.OPEN and wrong.answered_right is False and wrong.checked_rank != 1
    assert (report.right, report.wrong) == (1, 1)
    steps = [step["step"] for step in flags.flag_life(right)]
    assert steps[:2] == ["open", "corrected"] and steps[-1] == "answered"
    if LabelledQuestion.objects.get(flag=right).held_out is False:
        assert right.used_by_run_id == 7 and "used" in steps
    assert flags.flag_life(wrong)[-1]["step"] == "still_wrong"


def test_an_answered_question_comes_before_the_entry_it_merely_names(glossary, expert):
    """"que veut dire URSSAF sur le courrier de la CAF" names CAF (an exact match, first); once an expert answered it
    URSSAF, the same question and the question a word away are answered URSSAF at once, before any retraining."""
    from retrieval import search

    caf, urssaf = glossary["caf"], glossary["urssaf"]
    question = "que veut dire URSSAF sur le courrier de la CAF"
    indexing.index_rebuild(version=selectors.champion_version_get())
    before = search.search(query="qu'est-ce que la CAF me veut sur ce courrier", top_k=3).hits
    assert before[0].entry.id == caf.pk and before[0].hit.exact_match

    flags.flag_create(question_log=_log("qu'est-ce que la CAF me veut sur ce courrier", caf.pk, urssaf.pk), user=expert, reason="wrong_entry", correct_entry=urssaf)
    indexing.index_update_entry(entry_id=urssaf.pk)  # what the worker does on commit (a live worker: test_instant_fix)
    for asked in ("qu'est-ce que la CAF me veut sur ce courrier", "Qu'est-ce que la CAF me veut sur ce courrier ?"):
        first = search.search(query=asked, top_k=3).hits[0]
        assert (first.entry.id, first.hit.answered) == (urssaf.pk, True)
        assert search.hit_as_dict(first)["answered"] is True
    # A question only loosely like it keeps the usual order (the term it names first), and evaluation ignores answers.
    loose = search.search(query=question, top_k=3).hits[0]
    assert not loose.hit.answered
    judged = search.search(query="qu'est-ce que la CAF me veut sur ce courrier", top_k=3, exclude_known_questions=True).hits[0]
    assert judged.entry.id == caf.pk and not judged.hit.answered


CSV_OK = "question,term,entry_id,definition,kind\nque veut dire CAF,CAF,,,\nl'impôt sur la consommation,,{tva},,reverse\n"


def test_import_csv_and_jsonl_all_or_nothing_with_line_numbers(glossary, expert):
    other_caf = EntryFactory(term="CAF", definition="Capacité d'autofinancement d'une entreprise.")
    report = labelled_import.labelled_questions_import(content=b"question,term,definition\nque veut dire CAF,CAF,\n\nbonjour,ZZZ,\n,TVA,\n", file_format="csv", user=expert)
    assert not report.imported and LabelledQuestion.objects.count() == 0
    assert [(error.line, ("2 sens" in error.reason) or ("ZZZ" in error.reason) or ("vide" in error.reason)) for error in report.errors] == [
        (2, True), (4, True), (5, True)
    ]

    jsonl = "\n".join([
        json.dumps({"question": "la CAF qui verse les aides au logement", "term": "CAF", "definition": glossary["caf"].definition}),
        "{pas du json",
        json.dumps({"question": "sigle de la capacité d'autofinancement", "entry_id": other_caf.pk, "kind": "reverse"}),
        json.dumps({"question": "x", "entry_id": 999999}),
        json.dumps({"question": "y", "term": "TVA", "kind": "haiku"}),
    ]).encode()
    report = labelled_import.labelled_questions_import(content=jsonl, file_format="jsonl", user=expert)
    assert [error.line for error in report.errors] == [2, 4, 5] and not report.imported

    good = "\n".join(jsonl.decode().split("\n")[i] for i in (0, 2)).encode()
    report = labelled_import.labelled_questions_import(content=good, file_format="jsonl", user=expert)
    assert report.imported and report.created == 2
    reverse_question = LabelledQuestion.objects.get(entry=other_caf)
    assert (reverse_question.kind, reverse_question.kind_set_by, reverse_question.source) == ("reverse", "expert", "import")


def test_labelled_pages_and_accept_answer(client, reader, expert, glossary):
    log = _log("c'est quoi la TVA ?", glossary["tva"].pk, glossary["caf"].pk)
    client.force_login(reader)
    assert client.post(reverse("retrieval:answer-accept", args=[log.pk])).status_code == 403
    client.force_login(expert)
    response = client.post(reverse("retrieval:answer-accept", args=[log.pk]), **HTMX)
    assert response.status_code == 200 and "TVA" in response.content.decode()
    accepted = LabelledQuestion.objects.get()
    assert (accepted.entry, accepted.source, accepted.question_log) == (glossary["tva"], "accepted_answer", log)

    response = client.post(reverse("retrieval:labelled-create"), {"text": "la taxe payée sur chaque achat", "correct_entry": glossary["tva"].pk, "kind": ""})
    assert response.status_code == 302
    exam = LabelledQuestion.objects.get(source="exam")
    response = client.post(reverse("retrieval:labelled-kind", args=[exam.pk]), {"kind": "paraphrase"}, **HTMX)
    assert response.status_code == 200 and f"labelled-row-{exam.pk}" in response.content.decode()
    exam.refresh_from_db()
    assert (exam.kind, exam.kind_set_by) == ("paraphrase", "expert")

    page = client.get(reverse("retrieval:labelled-list"), {"source": "exam"}).content.decode()
    assert "la taxe payée sur chaque achat" in page and "c&#x27;est quoi la TVA ?" not in page

    upload = client.post(reverse("retrieval:labelled-import"), {"file": _upload("q.csv", b"question,term\nbonjour,ZZZ\n")})
    assert upload.status_code == 400 and "ZZZ" in upload.content.decode()

    assert client.post(reverse("retrieval:labelled-delete", args=[exam.pk])).status_code == 302
    assert not LabelledQuestion.objects.filter(pk=exam.pk).exists()


def _upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_api_lists_with_filters_and_experts_create(api_client, reader, expert, glossary):
    api_client.force_authenticate(reader)
    refused = api_client.post("/api/labelled-questions/", {"text": "q", "entry": glossary["tva"].pk}, format="json")
    assert refused.status_code == 403 and "reason" in refused.json()
    api_client.force_authenticate(expert)
    created = api_client.post("/api/labelled-questions/", {"text": "l'impôt sur la consommation", "entry": glossary["tva"].pk}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["entry_term"] == "TVA" and body["source"] == "exam" and body["kind"] in LabelledQuestion.Kind.values
    bad = api_client.post("/api/labelled-questions/", {"text": "", "entry": glossary["tva"].pk}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()
    assert [item["id"] for item in api_client.get("/api/labelled-questions/", {"source": "exam"}).json()["results"]] == [body["id"]]
    assert api_client.get("/api/labelled-questions/", {"source": "flag"}).json()["results"] == []
    assert api_client.get("/api/labelled-questions/", {"kind": "nonsense"}).status_code == 400
    # Ids beyond what a database stores are refused with a reason (the driver raised OverflowError: a 500).
    for entry in ("-14159294737791025152", str(2**63), "0"):
        refused = api_client.get("/api/labelled-questions/", {"entry": entry})
        assert refused.status_code == 400 and "entry" in refused.json()["reason"], entry
    assert api_client.get("/api/labelled-questions/", {"entry": glossary["tva"].pk}).json()["count"] == 1
