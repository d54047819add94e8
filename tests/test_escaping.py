"""Output escaping: text people or models wrote is shown as text, never run as markup.

A script tag and an attribute breakout are stored wherever users and the LLM write (entry term, definition,
variants, contexts, domain name, questions, answers, sources, flag comments, mined negatives, imported files) and
every page that shows them is rendered: the payloads must appear only escaped.
"""
from __future__ import annotations

import io

import pytest
from django.urls import reverse

from evaluation import charts
from glossary.models import Entry
from retrieval.models import Flag, QuestionLog
from retrieval.selectors import champion_version_get
from training.models import NegativeCandidate
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(2)>'
RAW_MARKERS = ("<script>alert(1)", "<img src=x onerror")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def assert_escaped(html: str, *, where: str, expect_payload: bool = True) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{where}: unescaped payload {marker!r}"
    if expect_payload:
        assert ESCAPED_SCRIPT in html, f"{where}: the payload should be shown, escaped"


@pytest.fixture
def hostile(expert):
    """Hostile text in every field a user or the LLM fills."""
    domain = DomainFactory(name=f"Domaine {SCRIPT}")
    entry = EntryFactory(
        term=f"TVA{SCRIPT}", definition=f"Impôt {SCRIPT} {BREAKOUT}", variants=[f"Taxe {SCRIPT}"],
        contexts=[f"Contexte {SCRIPT} {BREAKOUT}"], domain=domain, status=Entry.Status.VALIDATED,
    )
    other = EntryFactory(term=f"CAF{SCRIPT}", definition=f"Caisse {BREAKOUT}", domain=domain)
    hit = {
        "entry_id": entry.pk, "term": entry.term, "domain": domain.name, "passage_type": "definition", "passage_position": 0,
        "passage_text": entry.definition, "dense_score": 0.9, "lexical_score": 1.0, "dense_rank": 1, "lexical_rank": 1,
        "fused_score": 0.03, "rank": 1, "exact_match": True,
    }
    # What a generative answer from a hostile (or hijacked) LLM would leave in the log.
    log = QuestionLog.objects.create(
        user=expert, question=f"C'est quoi {SCRIPT} ?", version=champion_version_get(), hits=[hit],
        answer_text=f"La réponse {SCRIPT} {BREAKOUT} [S1]", answer_mode="generative",
        sources=[{"number": 1, "entry_id": entry.pk, "term": entry.term, "passage_type": "definition", "text": entry.definition}],
        processed_query={"original": SCRIPT, "final": SCRIPT, "corrected": SCRIPT, "corrections": [[SCRIPT, BREAKOUT]]},
        fallback_reason=f"LLM {SCRIPT}",
    )
    flag = Flag.objects.create(
        question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=entry,
        comment=f"Commentaire {SCRIPT} {BREAKOUT}", retrieved=[hit], domain=domain, version=log.version,
    )
    candidate = NegativeCandidate.objects.create(
        anchor=f"Ancre {SCRIPT}", anchor_entry=entry, negative_entry=other, negative_text=f"Négatif {SCRIPT} {BREAKOUT}",
        score=0.8, positive_score=0.7, reason=f"raison {SCRIPT}",
    )
    return {"entry": entry, "domain": domain, "log": log, "flag": flag, "candidate": candidate}


def _pages(hostile) -> list[tuple[str, dict]]:
    entry, log = hostile["entry"], hostile["log"]
    htmx = {"HTTP_HX_REQUEST": "true"}
    return [
        (reverse("glossary:entry-list"), {}),
        (reverse("glossary:entry-list") + "?q=TVA", htmx),
        (reverse("glossary:entry-detail", args=[entry.pk]), {}),
        (reverse("glossary:entry-edit", args=[entry.pk]), {}),
        (reverse("glossary:entry-delete", args=[entry.pk]), {}),
        (reverse("glossary:domain-list"), {}),
        (reverse("retrieval:question-detail", args=[log.pk]), {}),
        (reverse("retrieval:flag-list"), {}),
        (reverse("retrieval:flag-list"), htmx),
        (reverse("retrieval:entry-suggestions") + "?entry_search=TVA", htmx),
        (reverse("training:screening"), {}),
        (reverse("admin:glossary_entry_changelist"), {}),
        (reverse("admin:glossary_entry_change", args=[entry.pk]), {}),
        (reverse("admin:retrieval_flag_changelist"), {}),
    ]


def test_every_page_showing_user_text_escapes_it(client, expert, maintainer, hostile):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser(username="staff", password="pw-staff", email="staff@example.org")
    client.force_login(staff)  # sees everything, including the maintainers' debug panel
    for url, headers in _pages(hostile):
        response = client.get(url, **headers)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode(), where=url)


def test_htmx_fragments_and_messages_escape_user_text(expert_client, hostile):
    entry, log = hostile["entry"], hostile["log"]
    row = expert_client.post(reverse("glossary:entry-status", args=[entry.pk]), {"status": "draft", "fragment": "row"}, HTTP_HX_REQUEST="true")
    assert_escaped(row.content.decode(), where="entry row fragment")
    flags = expert_client.post(
        reverse("retrieval:flag-create", args=[log.pk]), {"reason": "bad_wording", "comment": f"Encore {SCRIPT}"}, HTTP_HX_REQUEST="true",
    )
    assert flags.status_code == 200
    assert_escaped(flags.content.decode(), where="flags fragment")
    # A success message quotes the term the user typed.
    created = expert_client.post(
        reverse("glossary:entry-create"), {"term": f"NEW{SCRIPT}", "kind": "term", "definition": f"Déf {SCRIPT}", "status": "draft"}, follow=True,
    )
    assert_escaped(created.content.decode(), where="page after creating an entry")


def test_import_preview_escapes_the_file_content(expert_client):
    content = f'term,definition,domain\n"X{SCRIPT}","Déf {SCRIPT} {BREAKOUT}","D{SCRIPT}"\n,"sans terme {SCRIPT}",\n'.encode()
    upload = io.BytesIO(content)
    upload.name = f"{SCRIPT}.csv"
    response = expert_client.post(reverse("glossary:import-upload"), {"file": upload, "file_format": "csv", "status": "draft"})
    assert response.status_code == 200
    assert_escaped(response.content.decode(), where="import preview")


def test_workbench_and_version_pages_escape_user_text(client, hostile):
    """Pages of the review queue and of model versions, where they exist."""
    from django.contrib.auth import get_user_model
    from django.urls import NoReverseMatch

    staff = get_user_model().objects.create_superuser(username="staff", password="pw-staff", email="staff@example.org")
    client.force_login(staff)
    rendered = 0
    for name in ("training:workbench", "evaluation:version-list", "evaluation:history"):
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        response = client.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode(), where=url, expect_payload=False)
        rendered += 1
    assert rendered


def test_charts_escape_their_labels():
    """Report charts are inserted with |safe: their labels (domain names, version labels) must be escaped by the chart code."""
    svg = charts.bar_chart({f"v1 {SCRIPT}": {f"Domaine {SCRIPT}": 0.5, BREAKOUT: 0.7}}, f"Titre {SCRIPT}")
    assert "<script" not in svg and "<img" not in svg
    assert "&lt;script&gt;" in svg
    line = charts.line_chart([(f"2025 {SCRIPT}", {f"R@1 {SCRIPT}": 0.4})], f"Historique {BREAKOUT}")
    assert "<script" not in line and "<img" not in line
