"""The assistant page (ask, answer, debug panel, flag) and the flag list page."""
from django.urls import reverse

from retrieval import flags, selectors, versions
from retrieval.models import Flag, QuestionLog

HTMX = {"HTTP_HX_REQUEST": "true"}


def _ask(client, question: str, **headers):
    return client.post(reverse("retrieval:ask"), {"question": question}, **headers)


def test_ask_page_for_any_signed_in_user(client, reader):
    client.force_login(reader)
    response = client.get(reverse("retrieval:ask"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'hx-post="/ask/"' in html and 'for="id_question"' in html
    assert 'href="/flags/"' in html  # the nav links to the flag list


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("retrieval:ask"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_demo_question_answers_with_sources_and_debug_panel(client, maintainer, glossary):
    client.force_login(maintainer)
    response = _ask(client, "c'est quoi l'ursaf ?", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # an htmx fragment, swapped in place
    urssaf = glossary["urssaf"]
    assert "Organisme qui collecte les cotisations" in html and "[S1]" in html
    assert f'href="/glossary/entries/{urssaf.pk}/"' in html
    assert "Débogage" in html and "ursaf → urssaf" in html and "no LLM configured" in html
    assert "Union de recouvrement des cotisations" in html  # the acronym expansion
    log = QuestionLog.objects.get()
    assert log.user == maintainer and log.hits[0]["entry_id"] == urssaf.pk


def test_debug_panel_is_for_maintainers_only(client, expert, glossary):
    client.force_login(expert)
    html = _ask(client, "c'est quoi l'ursaf ?", **HTMX).content.decode()
    assert "[S1]" in html and "Débogage" not in html
    assert "Signaler une mauvaise réponse" in html  # experts flag


def test_readers_cannot_flag(client, reader, glossary):
    client.force_login(reader)
    html = _ask(client, "c'est quoi l'ursaf ?", **HTMX).content.decode()
    assert "Signaler une mauvaise réponse" not in html
    log = QuestionLog.objects.get()
    response = client.post(reverse("retrieval:flag-create", args=[log.pk]), {"reason": "wrong_entry"})
    assert response.status_code == 403 and not Flag.objects.exists()


def test_page_without_htmx_renders_the_whole_page(client, expert, glossary):
    client.force_login(expert)
    response = _ask(client, "taxe sur la valeur ajoutée")
    html = response.content.decode()
    assert "<html" in html and "[S1]" in html


def test_empty_question_is_refused_in_place(client, expert, db):
    client.force_login(expert)
    response = _ask(client, "", **HTMX)
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not QuestionLog.objects.exists()


def test_expert_flags_a_wrong_answer_with_the_right_entry(client, expert, glossary):
    client.force_login(expert)
    _ask(client, "aide au logement des familles", **HTMX)
    log = QuestionLog.objects.get()
    right = glossary["caf"]
    response = client.post(
        reverse("retrieval:flag-create", args=[log.pk]),
        {"reason": "wrong_entry", "correct_entry": right.pk, "comment": "La CAF verse les aides au logement."},
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "le signalement est enregistré" in html and f'href="/glossary/entries/{right.pk}/"' in html
    flag = Flag.objects.get()
    assert (flag.created_by, flag.correct_entry, flag.question_log, flag.reason) == (expert, right, log, Flag.Reason.WRONG_ENTRY)
    ranked = [hit["entry_id"] for hit in log.hits]
    assert flag.wrongly_ranked_entry_ids == ranked[: ranked.index(right.pk)]


def test_expert_creates_the_missing_entry_from_the_flag_form(client, expert, glossary):
    client.force_login(expert)
    _ask(client, "c'est quoi l'ARS ?", **HTMX)
    log = QuestionLog.objects.get()
    response = client.post(
        reverse("retrieval:flag-create", args=[log.pk]),
        {"reason": "missing_entry", "new_term": "ARS", "new_kind": "acronym", "new_definition": "Agence régionale de santé, qui pilote la santé en région."},
        **HTMX,
    )
    assert response.status_code == 200
    flag = Flag.objects.get()
    assert flag.correct_entry.term == "ARS" and flag.correct_entry.created_by == expert


def test_flag_form_errors_are_shown_in_place(client, expert, glossary):
    client.force_login(expert)
    _ask(client, "c'est quoi l'ARS ?", **HTMX)
    log = QuestionLog.objects.get()
    response = client.post(reverse("retrieval:flag-create", args=[log.pk]), {"reason": "missing_entry", "new_term": "ARS"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "indiquez son terme et sa définition" in html
    assert not Flag.objects.exists()


def test_entry_suggestions_offer_radio_choices(client, expert, glossary):
    client.force_login(expert)
    response = client.get(reverse("retrieval:entry-suggestions"), {"entry_search": "rescrit"}, **HTMX)
    html = response.content.decode()
    assert f'name="correct_entry" value="{glossary["rescrit"].pk}"' in html


def _flag(glossary, user, *, entry: str, status: str = Flag.Status.OPEN, version=None) -> Flag:
    log = QuestionLog.objects.create(question=f"question sur {entry}", hits=[], version=version or selectors.champion_version_get())
    flag = flags.flag_create(question_log=log, user=user, reason=Flag.Reason.WRONG_ENTRY, correct_entry=glossary[entry])
    return flags.flag_set_status(flag=flag, status=status, user=user) if status != Flag.Status.OPEN else flag


def test_flags_page_filters(client, reader, expert, glossary):
    newer_version = versions.model_version_create(base_model=selectors.champion_version_get().base_model)
    open_social = _flag(glossary, expert, entry="caf")
    _flag(glossary, expert, entry="tva", status=Flag.Status.DISMISSED, version=newer_version)
    client.force_login(reader)

    def listed(**params) -> set[str]:
        html = client.get(reverse("retrieval:flag-list"), params).content.decode()
        return {question for question in ("question sur caf", "question sur tva") if question in html}

    assert listed() == {"question sur caf", "question sur tva"}
    assert listed(status="corrected") == {"question sur caf"}
    assert listed(status="dismissed") == {"question sur tva"}
    assert listed(domain=glossary["tva"].domain.pk) == {"question sur tva"}
    assert listed(version=newer_version.pk) == {"question sur tva"}
    fragment = client.get(reverse("retrieval:flag-list"), {"status": "corrected"}, **HTMX).content.decode()
    assert "<html" not in fragment and f"flag-row-{open_social.pk}" in fragment
    # Readers see no actions.
    assert f"Écarter le signalement {open_social.pk}" not in fragment


def test_experts_dismiss_and_reopen_flags(client, reader, expert, glossary):
    flag = _flag(glossary, expert, entry="caf")
    url = reverse("retrieval:flag-status", args=[flag.pk])
    client.force_login(reader)
    assert client.post(url, {"status": "dismissed"}).status_code == 403
    client.force_login(expert)
    response = client.post(url, {"status": "dismissed"}, **HTMX)
    assert response.status_code == 200 and "Rouvrir" in response.content.decode()
    flag.refresh_from_db()
    assert flag.status == Flag.Status.DISMISSED
    response = client.post(url, {"status": "open"})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.status == Flag.Status.OPEN
    assert client.post(url, {"status": "closed"}, **HTMX).status_code == 400


def test_question_detail_shows_the_logged_answer(client, expert, glossary):
    client.force_login(expert)
    _ask(client, "taxe sur la valeur ajoutée", **HTMX)
    log = QuestionLog.objects.get()
    html = client.get(reverse("retrieval:question-detail", args=[log.pk])).content.decode()
    assert "TVA : Impôt indirect sur la consommation" in html and f'id="source-{log.pk}-1"' in html


def test_search_unavailable_is_explained_in_place(client, expert, glossary, monkeypatch):
    from retrieval import encoding

    def model_missing(*args, **kwargs):
        raise RuntimeError("modèle introuvable")

    monkeypatch.setattr(encoding, "encode_documents_with", model_missing)
    client.force_login(expert)
    response = _ask(client, "TVA", **HTMX)
    assert response.status_code == 200 and "La recherche est indisponible" in response.content.decode()


def test_admin_lists_retrieval_rows_and_changes_flags_through_the_service(client, expert, glossary):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "pw-root"))
    log = QuestionLog.objects.create(question="q", hits=[], version=selectors.champion_version_get())
    flag = flags.flag_create(question_log=log, user=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=glossary["caf"])
    for model in ("embeddingmodel", "modelversion", "promotionevent", "indexstate", "questionlog", "flag"):
        assert client.get(f"/admin/retrieval/{model}/").status_code == 200, model
    response = client.post(f"/admin/retrieval/flag/{flag.pk}/change/", {"status": "dismissed"})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.status == Flag.Status.DISMISSED and flag.status_changed_by.username == "root"


def test_english_question_gets_the_expansion_and_english_words(client, expert, glossary):
    """Issue #17: 'what does URSSAF stand for?' in the English UI answers with the expansion, in English words."""
    client.force_login(expert)
    html = _ask(client, "what does URSSAF stand for?", HTTP_ACCEPT_LANGUAGE="en", **HTMX).content.decode()
    log = QuestionLog.objects.get()
    assert log.answer_text.startswith("URSSAF (Union de recouvrement des cotisations")
    assert "Example of use: " in log.answer_text
    assert "Exemple d'usage" not in html and "Voir aussi" not in html
