import pytest

from training.builder import (
    ConceptData,
    FlagData,
    LabelledQuestionData,
    TrainingPair,
    attach_negatives,
    build_pairs,
    dataset_columns,
    definitional_queries,
    select_training_pairs,
    to_dataset,
)
from training.mining import MinedTriplet

URSSAF = ConceptData(
    entry_id=1,
    term="URSSAF",
    kind="acronym",
    definition="Organisme chargé de collecter les cotisations sociales.",
    variants=("Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales", "Urssaf"),
    contexts=("L'URSSAF a notifié un redressement à l'entreprise.",),
    examples=(("Qui collecte les cotisations ?", "L'URSSAF collecte les cotisations sociales."),),
    domain="Social",
)
TVA = ConceptData(
    entry_id=2,
    term="taxe sur la valeur ajoutée",
    kind="term",
    definition="La taxe sur la valeur ajoutée est un impôt indirect sur la consommation.",
    contexts=("Le taux normal de taxe sur la valeur ajoutée s'applique.", "La taxe sur la valeur ajoutée est déductible."),
    domain="Fiscalité",
)
DGFIP = ConceptData(entry_id=3, term="DGFiP", kind="acronym", definition="Direction générale des finances publiques.", domain="Fiscalité")
NO_TEST = frozenset()


def by_anchor(pairs):
    return {(pair.anchor, pair.pair_type): pair for pair in pairs}


def test_definitional_queries_of_an_acronym_include_its_expansion_and_spellings_once():
    queries = definitional_queries(URSSAF)
    assert queries == [
        "URSSAF",
        "C'est quoi URSSAF ?",
        "Que signifie URSSAF ?",
        "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales",
    ]  # "Urssaf" folds to the term: not a second query
    assert definitional_queries(TVA) == ["taxe sur la valeur ajoutée", "C'est quoi taxe sur la valeur ajoutée ?"]


def test_concept_pairs_map_each_query_kind_to_the_right_passage():
    pairs = by_anchor(build_pairs(concepts=[URSSAF], test_entry_ids=NO_TEST, questions_per_kind=0))
    definition_text = "URSSAF : Organisme chargé de collecter les cotisations sociales."  # served passage text
    context_text = URSSAF.contexts[0]

    term_pair = pairs[("URSSAF", "definition")]
    assert term_pair.positive == definition_text
    assert term_pair.positive_key == "1:definition:0"
    assert term_pair.negatives == (context_text,)  # own context: the passage-type hard negative
    assert (term_pair.source, term_pair.entry_id, term_pair.domain) == ("glossary", 1, "Social")

    usage = pairs[("Exemple d'usage de URSSAF", "context")]
    assert (usage.positive, usage.negatives, usage.positive_key) == (context_text, (definition_text,), "1:context:1")

    answer = pairs[("Qui collecte les cotisations ?", "answer")]
    assert (answer.positive, answer.source, answer.positive_key) == (URSSAF.examples[0][1], "example", None)
    question_to_definition = pairs[("Qui collecte les cotisations ?", "definition")]
    assert question_to_definition.positive == definition_text
    assert len(pairs) == 4 + 1 + 2


def test_every_context_gets_its_pair_and_no_prompt_is_baked_in():
    pairs = build_pairs(concepts=[TVA], test_entry_ids=NO_TEST)
    contexts = [pair for pair in pairs if pair.pair_type == "context"]
    assert [pair.positive for pair in contexts] == list(TVA.contexts)
    assert all(not pair.anchor.startswith(("query", "passage")) for pair in pairs)


def test_flags_map_the_question_to_the_corrected_definition_with_wrong_entries_as_negatives():
    flag = FlagData(question="organisme qui encaisse les cotisations", entry_id=1, wrong_entry_ids=(3, 999))
    pairs = build_pairs(concepts=[URSSAF, DGFIP], flags=[flag], test_entry_ids=NO_TEST)
    flag_pair = next(pair for pair in pairs if pair.source == "flag")
    assert flag_pair.anchor == "organisme qui encaisse les cotisations"
    assert flag_pair.positive_key == "1:definition:0"
    assert flag_pair.negatives == ("DGFiP : Direction générale des finances publiques.",)  # 999 unknown: ignored


def test_builder_functions_refuse_test_side_entries():
    with pytest.raises(ValueError, match="test-side"):
        build_pairs(concepts=[URSSAF, TVA], test_entry_ids={2})
    with pytest.raises(ValueError, match="test-side"):
        build_pairs(concepts=[URSSAF], flags=[FlagData("q", 2)], test_entry_ids={2})
    pairs = build_pairs(concepts=[URSSAF], test_entry_ids=NO_TEST)
    with pytest.raises(ValueError, match="test-side"):
        to_dataset(pairs, test_entry_ids={1})
    with pytest.raises(ValueError, match="test-side"):
        select_training_pairs(pairs, [], test_entry_ids={1})
    triplet = MinedTriplet("URSSAF", "x", "1:definition:0", 1, 0.9, ("secret",), (7,), (0.5,))
    with pytest.raises(ValueError, match="mined negatives"):
        attach_negatives(pairs, [triplet], test_entry_ids={7})


def test_dataset_has_exactly_the_loss_columns_in_order_and_no_metadata():
    pairs = build_pairs(concepts=[URSSAF, TVA, DGFIP], test_entry_ids=NO_TEST)
    plain = to_dataset(pairs, test_entry_ids=NO_TEST)
    assert plain.column_names == ["anchor", "positive"]
    assert plain.num_rows == len(pairs)

    with_negatives = to_dataset(pairs, num_negatives=2, test_entry_ids=NO_TEST)
    assert with_negatives.column_names == dataset_columns(2) == ["anchor", "positive", "negative_1", "negative_2"]
    for metadata in ("source", "pair_type", "entry_id", "domain", "positive_key", "negatives"):
        assert metadata not in with_negatives.column_names
    assert with_negatives.num_rows == len(pairs)  # padded, not dropped
    rows = with_negatives.to_list()
    first = rows[0]
    assert first["anchor"] == "URSSAF" and first["negative_1"] == URSSAF.contexts[0]
    for row, pair in zip(rows, pairs, strict=True):
        negatives = {row["negative_1"], row["negative_2"]}
        assert row["positive"] not in negatives and len(negatives) == 2
        # Padding comes from other entries: never the pair's own definition or contexts.
        own = {p.positive for p in pairs if p.entry_id == pair.entry_id}
        padded = negatives - set(pair.negatives)
        assert not padded & own


def test_padding_is_seeded():
    pairs = build_pairs(concepts=[URSSAF, TVA, DGFIP], test_entry_ids=NO_TEST)
    first = to_dataset(pairs, num_negatives=1, seed=5, test_entry_ids=NO_TEST).to_list()
    assert first == to_dataset(pairs, num_negatives=1, seed=5, test_entry_ids=NO_TEST).to_list()


def test_attach_negatives_keeps_own_negatives_first():
    pairs = build_pairs(concepts=[URSSAF, DGFIP], test_entry_ids=NO_TEST)
    triplet = MinedTriplet("URSSAF", "?", "1:definition:0", 1, 0.8, ("DGFiP : Direction générale des finances publiques.",), (3,), (0.4,))
    attached = by_anchor(attach_negatives(pairs, [triplet], test_entry_ids=NO_TEST))
    assert attached[("URSSAF", "definition")].negatives == (URSSAF.contexts[0], triplet.negatives[0])
    assert attached[("C'est quoi URSSAF ?", "definition")].negatives == (URSSAF.contexts[0],)


def make_pair(anchor, entry_id, source="glossary"):
    return TrainingPair(anchor, f"def {entry_id}", (), source, "definition", entry_id, "d", f"{entry_id}:definition:0")


def test_replay_adds_a_seeded_sample_of_earlier_material_and_drops_stale_pairs():
    new = [make_pair("changed", 1), make_pair("new", 2)]
    earlier = [make_pair("old wording", 1)] + [make_pair(f"old {index}", 10 + index) for index in range(10)]

    selected = select_training_pairs(new, earlier, replay_ratio=1.5, seed=3, test_entry_ids=NO_TEST)

    assert selected[:2] == new
    replayed = selected[2:]
    assert len(replayed) == 3  # 1.5 per new pair
    assert all(pair.entry_id >= 10 for pair in replayed)  # entry 1 changed: its old pair is stale
    assert replayed == select_training_pairs(new, earlier, replay_ratio=1.5, seed=3, test_entry_ids=NO_TEST)[2:]


def test_flags_do_not_make_earlier_pairs_stale_and_max_pairs_caps_the_total():
    new = [make_pair("flagged question", 10, source="flag")]
    earlier = [make_pair(f"old {index}", 10 + index) for index in range(5)]
    everything = select_training_pairs(new, earlier, replay_ratio=10, seed=1, test_entry_ids=NO_TEST)
    assert len(everything) == 6  # the flag on entry 10 keeps entry 10's earlier pair
    capped = select_training_pairs(new, earlier, replay_ratio=10, seed=1, max_pairs=4, test_entry_ids=NO_TEST)
    assert len(capped) == 4 and capped[0] == new[0]


def test_expert_questions_are_never_sampled_away_when_new_pairs_exceed_max_pairs():
    generated = [make_pair(f"generated {index}", 100 + index) for index in range(50)]
    expert = [make_pair(f"flagged {index}", 200 + index, source="flag") for index in range(3)]
    expert.append(make_pair("exam question", 300, source="labelled"))
    for seed in range(5):
        selected = select_training_pairs(generated[:25] + expert + generated[25:], [], seed=seed, max_pairs=10, test_entry_ids=NO_TEST)
        assert len(selected) == 10 and selected[:4] == expert
        assert len({pair.anchor for pair in selected[4:]} & {pair.anchor for pair in generated}) == 6


CAF_FAMILY = ConceptData(entry_id=4, term="CAF", kind="acronym", definition="Caisse d'allocations familiales.",
                         contexts=("La CAF verse les allocations.",), domain="Social")
CAF_FIRE = ConceptData(entry_id=5, term="CAF", kind="acronym", definition="Chef appui feu", domain="Secours")


def test_generated_question_pairs_cover_reverse_typo_and_ambiguous_kinds_with_the_definition_as_positive():
    pairs = build_pairs(concepts=[URSSAF, DGFIP, CAF_FAMILY, CAF_FIRE], test_entry_ids=NO_TEST, questions_per_kind=2)
    questions = [pair for pair in pairs if pair.source == "question"]
    dgfip = [pair for pair in questions if pair.entry_id == 3]
    assert {pair.positive for pair in dgfip} == {"DGFiP : Direction générale des finances publiques."}
    assert all(pair.positive_key == "3:definition:0" and pair.pair_type == "definition" for pair in dgfip)
    anchors = [pair.anchor.lower() for pair in dgfip]
    # Reverse look-ups: from the definition's words, not naming the acronym.
    assert any("finances publiques" in anchor and "dgfip" not in anchor for anchor in anchors)
    # Typos of the term: close to "dgfip" but not it.
    assert any(anchor not in ("dgfip",) and any(len(word) >= 4 and word != "dgfip" and word[:2] == "dg" for word in anchor.split()) for anchor in anchors)
    # A shared acronym is asked with words that settle the sense; its context passages are the negatives.
    caf = [pair for pair in questions if pair.entry_id == 4 and "CAF" in pair.anchor]
    assert caf and all(pair.negatives == ("La CAF verse les allocations.",) for pair in caf)
    assert any(("allocations" in pair.anchor or "familiales" in pair.anchor or "caisse" in pair.anchor) for pair in caf)
    assert not any(pair.anchor == "CAF" for pair in questions)  # a bare shared acronym settles nothing
    # Same inputs, same pairs (deterministic).
    again = build_pairs(concepts=[URSSAF, DGFIP, CAF_FAMILY, CAF_FIRE], test_entry_ids=NO_TEST, questions_per_kind=2)
    assert [(pair.anchor, pair.positive) for pair in again] == [(pair.anchor, pair.positive) for pair in pairs]


def test_labelled_questions_become_pairs_with_wrongly_ranked_entries_as_negatives_and_come_first():
    labelled = LabelledQuestionData(question="l'organisme qui verse les allocations familiales", entry_id=4, wrong_entry_ids=(5, 3, 4))
    pairs = build_pairs(concepts=[URSSAF, DGFIP, CAF_FAMILY, CAF_FIRE], labelled=[labelled], test_entry_ids=NO_TEST)
    first = pairs[0]
    assert (first.anchor, first.source, first.positive_key) == ("l'organisme qui verse les allocations familiales", "labelled", "4:definition:0")
    assert first.negatives == ("CAF : Chef appui feu", "DGFiP : Direction générale des finances publiques.")  # itself dropped
    with pytest.raises(ValueError, match="test-side"):
        build_pairs(concepts=[URSSAF], labelled=[LabelledQuestionData("q", 2)], test_entry_ids={2})
    with pytest.raises(ValueError, match="not among"):
        build_pairs(concepts=[URSSAF], labelled=[LabelledQuestionData("q", 9)], test_entry_ids=NO_TEST)


def test_generated_pairs_never_come_from_test_side_entries():
    pairs = build_pairs(concepts=[URSSAF, DGFIP], test_entry_ids={4, 5}, questions_per_kind=3)
    assert {pair.entry_id for pair in pairs} == {1, 3}
    with pytest.raises(ValueError, match="test-side"):
        build_pairs(concepts=[URSSAF, CAF_FAMILY], test_entry_ids={4}, questions_per_kind=3)
