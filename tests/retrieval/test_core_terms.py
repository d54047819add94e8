"""Exact term matches (retrieval.terms): which entries a query names."""
from retrieval.terms import TermLookup

LOOKUP = TermLookup([(1, "PLUS"), (2, "APL"), (3, "Abattement"), (4, "URSSAF"), (5, "ART"), (6, "Quotient familial")])


def test_a_dictionary_word_the_glossary_writes_only_as_an_acronym_is_the_word_in_lower_case():
    # "en plus" is not PLUS (a housing loan): as an exact match it came before the entry asked about.
    assert LOOKUP.match("jours de repos en plus quand on travaille plus de 35 heures", language="fr") == set()
    assert LOOKUP.match("conservatoire national des art et métiers", language="fr") == set()
    # Typed in capitals it is the acronym.
    assert LOOKUP.match("que veut dire PLUS", language="fr") == {1}


def test_lower_case_acronyms_and_ordinary_terms_still_match():
    assert LOOKUP.match("c'est quoi l'urssaf", language="fr") == {4}  # not a French word: the acronym
    assert LOOKUP.match("l'apl de la caf", language=None) == {2}
    assert LOOKUP.match("abattement fiscal", language="fr") == {3}  # a term written as a word stays a term
    assert LOOKUP.match("le quotient familial", language="fr") == {6}
    assert LOOKUP.match("what is the urssaf", language="en") == set()  # lower case in English: ordinary words
