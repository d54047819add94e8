"""Property-based tests of query pre-processing: whatever people type, it never raises and returns a ProcessedQuery."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from retrieval.preprocess import ProcessedQuery, build_vocabulary, preprocess_query

VOCABULARY = build_vocabulary([
    ("URSSAF", "acronym", ["Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales"], "Organisme"),
    ("TVA", "acronym", ["Taxe sur la valeur ajoutée"], "Impôt indirect sur la consommation"),
    ("Dégrèvement", "term", [], "Réduction d'un impôt déjà établi"),
    ("C.A.F.", "acronym", [], "Caisse d'allocations familiales"),
])
EMPTY_VOCABULARY = build_vocabulary([])

# Words people type, among which typos, acronyms, accents, elisions and punctuation, mixed with anything.
WORDS = st.sampled_from(["URSSAF", "urssaf", "TVA", "t.v.a", "dégrèvement", "degrevment", "l'URSSAF", "qu'est-ce", "?", "C.A.F.", "what", "is", "the"])
QUERIES = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(WORDS, st.text(min_size=1, max_size=12)), max_size=40).map(" ".join),
    st.text(alphabet=st.characters(categories=["Zs", "Cc", "Cf", "Mn", "So"]), max_size=50),
    st.just(""),
)
BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(result: ProcessedQuery, text: str) -> None:
    assert isinstance(result, ProcessedQuery)
    assert isinstance(result.final, str) and isinstance(result.corrected, str)
    assert result.language in (None, "fr", "en")
    assert all(isinstance(typed, str) and isinstance(fixed, str) for typed, fixed in result.corrections)
    if text.strip():
        assert result.final.strip() or not result.original, "a query with words keeps something to search"


@BOUNDED
@given(text=QUERIES)
def test_preprocessing_never_raises(text):
    _check(preprocess_query(text, vocabulary=VOCABULARY), text)


@BOUNDED
@given(text=QUERIES)
def test_preprocessing_with_an_empty_glossary_never_raises(text):
    _check(preprocess_query(text, vocabulary=EMPTY_VOCABULARY), text)


@settings(max_examples=60, deadline=None)
@given(text=QUERIES, failure=st.sampled_from([RuntimeError("LLM down"), TimeoutError("slow"), ValueError("bad JSON")]), reply=st.text(max_size=80))
def test_a_failing_or_odd_translator_never_breaks_the_query(text, failure, reply):
    def failing(_text: str) -> str:
        raise failure

    _check(preprocess_query(text, vocabulary=VOCABULARY, translate=failing), text)
    _check(preprocess_query(text, vocabulary=VOCABULARY, translate=lambda _text: reply), text)


@settings(max_examples=10, deadline=None)
@given(word=st.text(alphabet=st.characters(categories=["Ll", "Lu"]), min_size=1, max_size=30))
def test_very_long_queries_never_raise(word):
    text = " ".join([word] * 2000) + " URSSAF " + "x" * 20_000
    _check(preprocess_query(text, vocabulary=VOCABULARY), text)
