"""Annotation guidelines: who edits them, their history, safe rendering, and which guide an item gets."""
from __future__ import annotations

import pytest
from django.urls import reverse

from training.guidelines import guideline_for, guideline_history, render_markdown
from training.models import Guideline, ReviewItem
from tests.factories import DomainFactory

pytestmark = pytest.mark.django_db


def _form(**overrides) -> dict:
    return {"domain": "", "source": "flag", "title": "Signalements", "body": "# Règles\n\n- vérifier la *définition*", **overrides}


def test_a_maintainer_creates_and_edits_a_guide_and_each_change_is_in_the_history(maintainer_client, maintainer):
    created = maintainer_client.post(reverse("training:guideline-create"), _form())
    guideline = Guideline.objects.get()
    assert created.status_code == 302 and created["Location"] == reverse("training:guideline-detail", args=[guideline.pk])

    edited = maintainer_client.post(reverse("training:guideline-edit", args=[guideline.pk]), _form(body="# Règles\n\n- vérifier le *domaine*"))

    assert edited.status_code == 302
    guideline.refresh_from_db()
    assert guideline.body.endswith("le *domaine*") and guideline.updated_by == maintainer
    records = list(guideline.history.order_by("history_date"))
    assert [record.history_type for record in records] == ["+", "~"]
    assert {record.history_user for record in records} == {maintainer}
    assert records[0].body.endswith("la *définition*")
    newest = guideline_history(guideline=guideline)[0]
    assert "-- vérifier la *définition*" in newest["body_diff"] and "+- vérifier le *domaine*" in newest["body_diff"]
    page = maintainer_client.get(reverse("training:guideline-history", args=[guideline.pk])).content.decode()
    assert "+- vérifier le *domaine*" in page and "maintainer" in page


def test_experts_read_guides_but_cannot_create_or_edit_them(expert_client):
    guideline = Guideline.objects.create(source="flag", title="Signalements", body="Texte d'origine")

    assert expert_client.get(reverse("training:guideline-detail", args=[guideline.pk])).status_code == 200
    assert expert_client.get(reverse("training:guideline-create")).status_code == 403
    assert expert_client.post(reverse("training:guideline-create"), _form(source="draft")).status_code == 403
    assert expert_client.post(reverse("training:guideline-edit", args=[guideline.pk]), _form(body="piraté")).status_code == 403
    guideline.refresh_from_db()
    assert guideline.body == "Texte d'origine" and Guideline.objects.count() == 1
    assert guideline.history.count() == 1


def test_markdown_is_rendered_and_scripts_and_raw_html_are_stripped(maintainer_client):
    body = (
        "## Doublons\n\n**Même sens** : fusionner. [aide](https://example.org/aide)\n\n"
        "<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n[piège](javascript:alert(1))\n\n"
        '<a href="https://example.org" onclick="alert(2)">lien</a>'
    )
    html = str(render_markdown(body))
    assert "<h2>Doublons</h2>" in html and "<strong>Même sens</strong>" in html
    assert '<a href="https://example.org/aide" rel="noopener noreferrer">aide</a>' in html
    for forbidden in ("<script", "alert('x')", "<img", "onerror", "javascript:", "onclick"):
        assert forbidden not in html

    maintainer_client.post(reverse("training:guideline-create"), _form(body=body))
    page = maintainer_client.get(reverse("training:guideline-detail", args=[Guideline.objects.get().pk])).content.decode()
    assert "<h2>Doublons</h2>" in page and "alert('x')" not in page and "onerror" not in page


def test_the_selector_picks_domain_and_source_over_source_only_over_the_general_guide():
    tax, health = DomainFactory(name="Fiscalité"), DomainFactory(name="Santé")
    general = Guideline.objects.create(title="Général", body="g")
    assert guideline_for(domain=tax, source="flag") == general

    domain_only = Guideline.objects.create(domain=tax, title="Fiscalité", body="d")
    assert guideline_for(domain=tax, source="flag") == domain_only
    assert guideline_for(domain=health, source="flag") == general

    source_only = Guideline.objects.create(source="flag", title="Signalements", body="s")
    assert guideline_for(domain=tax, source="flag") == source_only
    assert guideline_for(domain=None, source="flag") == source_only
    assert guideline_for(domain=tax, source="duplicate") == domain_only

    both = Guideline.objects.create(domain=tax, source="flag", title="Signalements fiscaux", body="ds")
    assert guideline_for(domain=tax, source="flag") == both
    assert guideline_for(domain=tax.pk, source="flag") == both
    assert guideline_for(domain=health, source="flag") == source_only
    assert guideline_for(domain=None, source=None) == general


def test_one_guide_per_domain_and_source(maintainer_client):
    Guideline.objects.create(source="flag", title="Signalements", body="s")
    response = maintainer_client.post(reverse("training:guideline-create"), _form(title="Encore"))
    assert response.status_code == 200 and "Un guide existe déjà pour ce domaine et cette source." in response.content.decode()
    assert Guideline.objects.count() == 1


def test_the_flags_page_links_to_the_flag_guide(expert_client):
    tax = DomainFactory(name="Fiscalité")
    general = Guideline.objects.create(source="flag", title="Signalements", body="s")
    specific = Guideline.objects.create(domain=tax, source="flag", title="Signalements fiscaux", body="ds")

    page = expert_client.get(reverse("retrieval:flag-list")).content.decode()
    link = reverse("training:guideline-show") + "?source=flag"
    assert link in page
    assert expert_client.get(link)["Location"] == reverse("training:guideline-detail", args=[general.pk])
    filtered = expert_client.get(reverse("retrieval:flag-list"), {"domain": tax.pk}).content.decode()
    assert f"{link}&amp;domain={tax.pk}" in filtered
    assert expert_client.get(f"{link}&domain={tax.pk}")["Location"] == reverse("training:guideline-detail", args=[specific.pk])


def test_the_workbench_include_shows_the_guide_for_the_item(expert_client):
    from django.template.loader import render_to_string

    tax = DomainFactory(name="Fiscalité")
    Guideline.objects.create(domain=tax, source="duplicate", title="Doublons fiscaux", body="**Fusionner** si même sens.")
    item = ReviewItem.objects.create(key="duplicate:1-2", source=ReviewItem.Source.DUPLICATE, domain=tax)

    html = render_to_string("training/_guideline.html", {"domain": item.domain_id, "source": item.source})

    assert "Doublons fiscaux" in html and "<strong>Fusionner</strong> si même sens." in html
    empty = render_to_string("training/_guideline.html", {"domain": item.domain_id, "source": "flag"})
    assert "Pas de guide d'annotation pour ce domaine et cette source." in empty


def test_the_workbench_shows_the_guide_beside_the_item(expert_client, expert):
    from retrieval import selectors as retrieval_selectors
    from retrieval.models import Flag, QuestionLog
    from training import workbench
    from tests.factories import EntryFactory

    tax = DomainFactory(name="Fiscalité")
    entry = EntryFactory(domain=tax)
    hit = {"entry_id": entry.pk, "term": entry.term, "domain": tax.name, "passage_type": "definition", "passage_text": entry.definition,
           "dense_score": 0.5, "lexical_score": None, "dense_rank": 1, "lexical_rank": None, "rank": 1}
    log = QuestionLog.objects.create(question="c'est quoi la TVA ?", hits=[hit])
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits, domain=tax)
    workbench.review_items_upsert(source=ReviewItem.Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()
    Guideline.objects.create(source="flag", title="Signalements", body="Choisir l'entrée *vraiment* demandée.")
    Guideline.objects.create(domain=tax, source="flag", title="Signalements fiscaux", body="Préférer la *définition* du BOFiP.")

    page = expert_client.get(reverse("training:workbench")).content.decode()

    assert "Signalements fiscaux" in page and "<em>définition</em> du BOFiP" in page and "vraiment" not in page
