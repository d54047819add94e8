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


def _french_source(text: str) -> bool:
    """Whether ``text`` is a French message that has a different English translation, i.e. was left untranslated."""
    with translation.override("en"):
        return bool(text) and translation.gettext(text) != text


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
    "french,english",
    [
        ("Doublon : « %(term)s » a déjà cette définition (entrée n° %(id)s).", "Duplicate: “%(term)s” already has this definition (entry no. %(id)s)."),
        ("Aucune entrée sélectionnée.", "No entry selected."),
        ("Importer un fichier", "Import a file"),
    ],
)
def test_catalogue_has_english_for_glossary_messages(french, english):
    with translation.override("en"):
        assert translation.gettext(french) == english


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
