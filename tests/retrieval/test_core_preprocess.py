"""Query pre-processing: language, domain-aware spelling, protected acronyms, expansions, switches."""
import pytest

from retrieval.preprocess import (
    ALREADY_FRENCH,
    NO_LLM,
    Vocabulary,
    build_vocabulary,
    correct_query_spelling,
    detect_query_language,
    preprocess_query,
)

CPAM = "Caisse primaire d'assurance maladie"
URSSAF = "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales"


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return build_vocabulary(
        [
            ("URSSAF", "acronym", [URSSAF, "Urssaf"]),
            ("CPAM", "acronym", [CPAM]),
            ("AAH", "acronym", ["Allocation aux adultes handicapés", "allocation adulte handicapé"]),
            ("PAS", "acronym", [], "Prélèvement à la source."),
            ("DGFiP", "acronym", ["Direction générale des Finances publiques"]),
            ("Quotient familial", "term", []),
            ("THE", "acronym", [], "Titre d'habilitation exceptionnel"),
        ]
    )


def test_vocabulary_from_the_glossary(vocabulary):
    assert vocabulary.acronyms["CPAM"] == [CPAM]
    assert vocabulary.acronyms["PAS"] == ["Prélèvement à la source"]  # a sigle's short definition is its expansion
    assert vocabulary.acronyms["DGFIP"] == ["Direction générale des Finances publiques"]
    assert {"URSSAF", "Quotient familial", CPAM} <= vocabulary.terms
    assert {"allocation", "handicapé", "urssaf", "quotient"} <= vocabulary.words


def test_domain_words_win_over_the_general_dictionary(vocabulary):
    processed = preprocess_query("alocation adulte handicapé", vocabulary=vocabulary)
    assert processed.corrected == "allocation adulte handicapé"
    assert processed.corrections == [("alocation", "allocation")]


def test_misspelt_acronym_goes_to_the_closest_glossary_acronym(vocabulary):
    processed = preprocess_query("c'est quoi l'ursaf ?", vocabulary=vocabulary)
    assert processed.corrected == "c'est quoi l'urssaf ?"
    assert processed.expansions == [URSSAF]
    assert processed.final == f"c'est quoi l'urssaf ? {URSSAF}"
    assert correct_query_spelling("URSAF", vocabulary=vocabulary) == ("URSSAF", [("URSAF", "URSSAF")])


def test_glossary_acronyms_short_tokens_and_numbers_are_left_alone(vocabulary):
    corrected, corrections = correct_query_spelling("la DGFiP et le PAS en 2024, c koi", vocabulary=vocabulary)
    assert corrections == [] and corrected == "la DGFiP et le PAS en 2024, c koi"


def test_acronyms_are_expanded(vocabulary):
    processed = preprocess_query("c koi la cpam", vocabulary=vocabulary)
    assert processed.corrections == []
    assert processed.expansions == [CPAM]
    assert processed.final == f"c koi la cpam {CPAM}"
    # "pas" in lower case is the French word, not the acronym PAS.
    assert preprocess_query("je ne sais pas", vocabulary=vocabulary).expansions == []
    assert preprocess_query("le PAS", vocabulary=vocabulary).expansions == ["Prélèvement à la source"]
    # An expansion already written out is not added again.
    assert preprocess_query(f"la CPAM ({CPAM})", vocabulary=vocabulary).expansions == []


def test_french_and_english_are_detected(vocabulary):
    assert detect_query_language("c'est quoi le quotient familial ?", vocabulary=vocabulary) == "fr"
    assert detect_query_language("what is the cpam", vocabulary=vocabulary) == "en"
    assert detect_query_language("CPAM", vocabulary=vocabulary) is None  # an acronym alone says nothing


def test_translation_is_skipped_without_an_llm_and_english_is_not_spell_checked(vocabulary):
    processed = preprocess_query("what is the cpam", vocabulary=vocabulary)
    assert processed.language == "en"
    assert processed.translation is None and processed.translation_skipped_reason == NO_LLM
    assert processed.corrected == "what is the cpam" and processed.steps["correct_spelling"] is False
    assert processed.expansions == [CPAM]  # "the" is an English word here, not the acronym THE


def test_english_is_translated_when_an_llm_is_given(vocabulary):
    asked = []

    def translate(text: str) -> str:
        asked.append(text)
        return "qu'est-ce que l'ursaf"

    processed = preprocess_query("what is the ursaf", vocabulary=vocabulary, translate=translate)
    assert asked == ["what is the ursaf"]
    assert processed.translation == "qu'est-ce que l'ursaf" and processed.translation_skipped_reason is None
    assert processed.corrected == "qu'est-ce que l'urssaf"  # the translation is then corrected and expanded
    assert processed.expansions == [URSSAF] and processed.steps["translate"] is True

    french = preprocess_query("c'est quoi le quotient familial", vocabulary=vocabulary, translate=translate)
    assert french.translation is None and french.translation_skipped_reason == ALREADY_FRENCH


def test_a_failing_translation_leaves_the_query_searchable(vocabulary):
    def translate(text: str) -> str:
        raise TimeoutError("LLM too slow")

    processed = preprocess_query("what is the cpam", vocabulary=vocabulary, translate=translate)
    assert processed.translation is None and "LLM too slow" in processed.translation_skipped_reason
    assert processed.final == f"what is the cpam {CPAM}"


def test_each_step_can_be_switched_off(vocabulary):
    processed = preprocess_query(
        "c'est quoi l'ursaf", vocabulary=vocabulary, detect_language=False, correct_spelling=False, expand_acronyms=False
    )
    assert processed.language is None
    assert processed.corrected == processed.final == "c'est quoi l'ursaf"
    assert processed.corrections == [] and processed.expansions == []
    assert processed.steps == {"detect_language": False, "translate": False, "correct_spelling": False, "expand_acronyms": False}
    only_expansion = preprocess_query("c'est quoi l'ursaf et la CPAM", vocabulary=vocabulary, correct_spelling=False)
    assert only_expansion.corrections == [] and only_expansion.expansions == [CPAM]


def test_an_acronym_several_entries_share_is_not_expanded():
    vocabulary = build_vocabulary(
        [
            ("CAP", "acronym", [], "Certificat d'aptitude professionnelle"),
            ("CAP", "acronym", [], "Commission administrative paritaire"),
            ("CAF", "acronym", [], "Caisse d'allocations familiales."),
            ("CAF", "acronym", [], "caisse d'allocations familiales"),  # the same sense, written twice
            ("AAH", "acronym", ["Allocation aux adultes handicapés", "allocation adulte handicapé"]),  # one entry, two forms
        ]
    )
    assert vocabulary.ambiguous("CAP") and not vocabulary.ambiguous("CAF") and not vocabulary.ambiguous("AAH")
    # Appending both senses would make "diplôme professionnel" ask about the commission as much as the diploma.
    processed = preprocess_query("CAP diplôme professionnel", vocabulary=vocabulary)
    assert processed.expansions == [] and processed.final == "CAP diplôme professionnel"
    # The unambiguous acronyms of the same question are still expanded.
    assert preprocess_query("que veut dire AAH sur le courrier de la CAP", vocabulary=vocabulary).expansions == [
        "Allocation aux adultes handicapés", "allocation adulte handicapé",
    ]
    assert preprocess_query("la caf", vocabulary=vocabulary).expansions == ["Caisse d'allocations familiales"]


def test_an_acronym_becomes_ambiguous_when_an_edited_entry_adds_a_sense():
    from retrieval.preprocess import LayeredVocabulary

    base = build_vocabulary([("CAP", "acronym", [], "Certificat d'aptitude professionnelle")])
    assert preprocess_query("CAP", vocabulary=base).expansions == ["Certificat d'aptitude professionnelle"]
    layered = LayeredVocabulary(base, build_vocabulary([("CAP", "acronym", [], "Commission administrative paritaire")]))
    assert layered.ambiguous("CAP")
    assert preprocess_query("CAP", vocabulary=layered).expansions == []
