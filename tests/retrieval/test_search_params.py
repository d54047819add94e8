"""The search API's shortcuts agree with what they replace: its parameters read directly
(retrieval.serializers.search_query_params) with SearchQuerySerializer (the same validated data where the serializer
takes them, its errors where it does not), the processed query as JSON with dataclasses.asdict."""
import itertools
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.http import QueryDict
from rest_framework.exceptions import ValidationError

from retrieval.serializers import SearchQuerySerializer, _plain_search_params, search_query_params

QUESTIONS = ["TVA", "  c'est quoi l'ursaf ?  ", "", "   ", "a\x00b", "été\tcafé", "x" * 600, "\u2003CAF\u2003"]
TOP_K = [None, "10", "1", "100", "0", "101", "010", "0100", "-3", "+5", "5.0", "1_0", "²", "", " 7 ", "abc"]
MODES = [None, "hybrid", "dense", "lexical", "Hybrid", "", "semantic"]
VERSIONS = [None, "champion", " v3 ", "id:4", "", "  "]
PREPROCESS = [None, "true", "False", "TRUE", "1", "0", "yes", "off", "On", "", "null", "maybe"]


def _serializer(query: QueryDict):
    params = SearchQuerySerializer(data=query)
    return dict(params.validated_data) if params.is_valid() else params.errors


def _cases():
    # Every value of each parameter with the others usual, and a sample of combinations.
    usual = {"q": "TVA", "top_k": "10", "mode": "hybrid", "version": "champion", "preprocess": "true"}
    for name, values in {"q": QUESTIONS + [None], "top_k": TOP_K, "mode": MODES, "version": VERSIONS, "preprocess": PREPROCESS}.items():
        for value in values:
            yield {**usual, name: value}
    for index, combination in enumerate(itertools.product(QUESTIONS[:3], TOP_K[:6], MODES[:4], VERSIONS[:3], PREPROCESS[:4])):
        if index % 7 == 0:
            yield dict(zip(("q", "top_k", "mode", "version", "preprocess"), combination))


@pytest.mark.parametrize("params", list(_cases()))
def test_direct_reading_agrees_with_the_serializer(params):
    query = QueryDict(urlencode({name: value for name, value in params.items() if value is not None}))
    expected = _serializer(query)
    plain = _plain_search_params(query)
    if plain is not None:  # taken directly: exactly the serializer's data, types included
        assert plain == expected and [type(value) for value in plain.values()] == [type(value) for value in expected.values()]
    if isinstance(expected, dict) and set(expected) == {"q", "top_k", "mode", "version", "preprocess"}:
        assert search_query_params(query) == expected
    else:
        with pytest.raises(ValidationError) as refused:
            search_query_params(query)
        assert refused.value.detail == expected


def test_repeated_parameters_and_long_questions_go_through_the_serializer():
    assert _plain_search_params(QueryDict("q=a&q=b")) is None
    assert search_query_params(QueryDict("q=a&q=b"))["q"] == "b"  # the serializer's choice: the last one
    assert _plain_search_params(QueryDict(urlencode({"q": "x" * (settings.QUERY_MAX_CHARS + 1)}))) is None
    assert search_query_params(QueryDict("q=TVA&format=json&other=1")) == {
        "q": "TVA", "top_k": 10, "mode": "hybrid", "version": "champion", "preprocess": True,
    }


@pytest.mark.parametrize("question", ["c'est quoi l'ursaf ?", "what is the TVA", "CAF", "taxe sur la valeur ajoutée"])
def test_the_processed_query_as_json_is_what_asdict_gave(question):
    from dataclasses import asdict

    from retrieval.preprocess import build_vocabulary, preprocess_query
    from retrieval.search import processed_query_as_dict

    processed = preprocess_query(question, vocabulary=build_vocabulary([
        ("URSSAF", "acronym", [], "Union de recouvrement des cotisations"), ("CAF", "acronym", ["caisse d'allocations familiales"]),
        ("taxe sur la valeur ajoutée", "term", ["TVA"]),
    ]))
    expected = asdict(processed)
    expected["corrections"] = [list(pair) for pair in processed.corrections]
    data = processed_query_as_dict(processed)
    assert data == expected and list(data) == list(expected)
    assert data["steps"] is not processed.steps and data["expansions"] is not processed.expansions
