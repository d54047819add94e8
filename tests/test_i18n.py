import re
from html import unescape

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from tests.factories import EntryFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("glossary:entry-list")
HEADING = re.compile(r"<(h[1-3]|caption|th|button|label)\b[^>]*>(.*?)</\1>", re.S)
TAG = re.compile(r"<[^>]+>")


def _headings(body: str) -> list[str]:
    return [" ".join(unescape(TAG.sub(" ", inner)).split()) for _tag, inner in HEADING.findall(body)]


def _french_translations() -> set[str]:
    """Every French text of the catalogue that differs from its English source string."""
    from django.utils.translation import trans_real

    catalog = trans_real.translation("fr")._catalog
    french = set()
    for key, value in catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        if value != msgid.split("\x04")[-1]:
            french.add(value)
    return french


def _french_source(text: str) -> bool:
    """Whether ``text`` is the French translation of a message, i.e. a page meant to be English shows French."""
    return bool(text) and text in _french_translations()


def test_french_is_the_default(expert_client):
    EntryFactory(term="CAF", status="draft")
    body = expert_client.get(LIST_URL).content.decode()
    assert '<html lang="fr">' in body
    assert "Valider la sélection" in body and "Se déconnecter" in body


def test_switching_to_english_translates_the_list_page(expert_client):
    EntryFactory(term="CAF", status="draft")
    response = expert_client.post(reverse("set_language"), {"language": "en", "next": LIST_URL})
    assert response.status_code == 302
    body = expert_client.get(LIST_URL).content.decode()
    assert '<html lang="en">' in body
    for english in ("Glossary", "Validate selection", "Log out", "1 entry found", "Search", "draft: 1", '<span class="badge draft">draft</span>'):
        assert english in body
    for french in ("Valider la sélection", "Se déconnecter", "entrée trouvée"):
        assert french not in body


def test_login_page_is_translated(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    body = client.get(reverse("login")).content.decode()
    assert "Log in" in body and "Password" in body


@pytest.mark.parametrize(
    "english,french",
    [
        ("Duplicate: “%(term)s” already has this definition (entry no. %(id)s).", "Doublon : « %(term)s » a déjà cette définition (entrée n° %(id)s)."),
        ("No entry selected.", "Aucune entrée sélectionnée."),
        ("Import a file", "Importer un fichier"),
    ],
)
def test_catalogue_has_french_for_glossary_messages(english, french):
    # English is the source language: the French catalogue translates it, English needs no catalogue.
    with translation.override("fr"):
        assert translation.gettext(english) == french
    with translation.override("en"):
        assert translation.gettext(english) == english


@pytest.mark.parametrize(
    "url_name,english,french",
    [
        ("retrieval:ask", "Ask the glossary a question", "Poser une question au glossaire"),
        ("retrieval:flag-list", "Wrong-answer flags", "Signalements de mauvaises réponses"),
        ("training:run-list", "Model training", "Entraînement du modèle"),
        ("training:workbench", "Review workbench", "Atelier d'annotation"),
        ("evaluation:version-list", "Model versions", "Versions du modèle"),
    ],
)
def test_main_pages_of_each_app_are_translated(maintainer_client, url_name, english, french):
    EntryFactory(term="CAF", status="validated")
    maintainer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = maintainer_client.get(reverse(url_name))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<html lang="en">' in body
    assert f"<h1>{english}</h1>" in body
    assert french not in unescape(body)
    untranslated = [text for text in _headings(body) if _french_source(text)]
    assert untranslated == []


@pytest.mark.parametrize("recorded", [True, False])
def test_query_encoder_part_of_the_version_report_is_in_english(recorded):
    from django.template.loader import render_to_string

    from retrieval import selectors as retrieval_selectors

    version = retrieval_selectors.model_version_get(ref="base")
    variant = {"passed": True, "queries": 40, "cosine_min": 0.98, "cosine_mean": 0.99, "recall_at_1_torch": 80.0,
               "recall_at_1_variant": 80.0, "ms_per_query": 2.1, "reason": ""}
    version.encoder_check = {"served": "onnx-int8", "variants": {"onnx": variant, "onnx-int8": variant}} if recorded else {}
    context = {"version": version, "served_encoder": "onnx-int8" if recorded else "torch", "query_encoder_setting": "auto", "is_maintainer": True}
    with translation.override("en"):
        html = render_to_string("evaluation/_encoders.html", context)
    english = ["Query encoder", "Download the model (sentence-transformers, zip)"]
    english += (
        ["This version's queries are encoded by <strong>onnx-int8</strong>.", "(the check's choice: onnx-int8; setting QUERY_ENCODER=auto)",
         "Variant", "May serve", "Cosine min / mean", "Hit@1 torch / variant", "ms per query", "Reason for refusal",
         "Compared with torch on 40 queries of the frozen test set"]
        if recorded else ["No ONNX variant yet: queries are encoded by torch"]
    )
    for text in english:
        assert text in html
    for french in ("Encodeur", "requête", "Variante", "Télécharger", "Pas encore", "Raison"):
        assert french not in html
