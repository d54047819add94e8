"""Ambiguous acronyms: the answer says the asked acronym has several senses and lists them with their domains."""
import pytest

from glossary.models import Entry
from retrieval import answering
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_cafs(glossary):
    accounting = DomainFactory(name="Comptabilité")
    other = EntryFactory(
        term="CAF", kind=Entry.Kind.ACRONYM, domain=accounting, variants=["Capacité d'autofinancement"],
        definition="Capacité d'autofinancement : ressources qu'une entreprise dégage de son activité pour financer ses investissements.",
        contexts=["La CAF de l'entreprise couvre ses investissements de l'année."],
    )
    return glossary["caf"], other


def test_a_question_that_does_not_say_which_sense_lists_them(two_cafs, expert):
    family, accounting = two_cafs
    answer, log = answering.answer_question(question="que veut dire CAF ?", user=expert)
    senses = {(sense["entry_id"], sense["domain"]) for sense in log.ambiguous_senses}
    assert senses == {(family.pk, "Protection sociale"), (accounting.pk, "Comptabilité")}
    assert "2 sens" in answer.text and "Comptabilité" in answer.text and "Protection sociale" in answer.text
    assert {source.entry_id for source in answer.sources} == {family.pk, accounting.pk}


def test_words_of_one_sense_settle_it(two_cafs, expert):
    _answer, log = answering.answer_question(question="la CAF qui verse les aides au logement", user=expert)
    assert log.ambiguous_senses == []
    _answer, log = answering.answer_question(question="la CAF d'une entreprise qui investit", user=expert)
    assert log.ambiguous_senses == []


def test_an_acronym_with_one_sense_is_not_ambiguous(glossary, expert):
    _answer, log = answering.answer_question(question="que veut dire CAF ?", user=expert)
    assert log.ambiguous_senses == []


def test_the_api_answer_carries_the_senses_and_the_page_shows_them(two_cafs, expert, api_client, client):
    api_client.force_authenticate(expert)
    body = api_client.post("/api/answers", {"question": "c'est quoi la CAF"}, format="json").json()
    assert sorted(sense["domain"] for sense in body["ambiguous_senses"]) == ["Comptabilité", "Protection sociale"]
    assert all(sense["definition"] for sense in body["ambiguous_senses"])
    client.force_login(expert)
    page = client.post("/ask/", {"question": "c'est quoi la CAF"}).content.decode()
    assert "ambiguous-senses" in page and "Comptabilité" in page
    # Flag forms tell the candidates apart by definition and domain, not "CAF (rang 1) / CAF (rang 2)".
    assert "Capacité d&#x27;autofinancement : ressources" in page and "[Comptabilité]" in page
