"""The benchmark suite must not rot: its question set, one small timing piece, the report writer, the CLI."""
from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench import report, results
from bench.environment import ROOT, data_dir
from bench.results import Section
from bench.synthetic import DEV, TEST, question_split, questions
from glossary.text import fold


def test_sigles_question_set_is_large_varied_and_without_duplicates():
    asked = questions()
    assert len(asked) >= 600
    assert all(question.query.strip() and question.term.strip() and question.definition.strip() for question in asked)
    kinds = Counter(question.category for question in asked)
    assert set(kinds) == {"acronym", "reverse", "paraphrase", "typo", "english", "ambiguous"}
    assert min(kinds.values()) >= 50
    assert len({(question.term, question.definition) for question in asked}) >= 250
    folded = [fold(question.query) for question in asked]
    assert len(folded) == len(set(folded))


def test_every_question_points_at_a_real_sigles_row():
    path = data_dir() / "sigles.csv"
    if not path.exists():
        pytest.skip(f"no {path}")
    with path.open(encoding="utf-8") as handle:
        rows = {(row["term"], row["definition"]) for row in csv.DictReader(handle)}
    assert [question.query for question in questions() if (question.term, question.definition) not in rows] == []


def test_markdown_writer_renders_tables_targets_and_skipped_parts(tmp_path):
    section = Section(name="scale", title="Speed and scale")
    section.table("Search latency (ms)", ["Passages", "p50", "p95"], [["1,000", 12.5, 30.25], ["10,000", 14.0, "a|b"]])
    section.target("p50 at 10k", value="14.0 ms", limit="<= 20 ms", met=True)
    results.save(section, tmp_path)
    stored = results.load_all(tmp_path)["scale"]
    text = report.document(
        [stored, results.skipped("gpu", "GPU", "No CUDA GPU.")],
        machine={"CPU": "test"}, versions={"numpy": "2"}, commands=["make bench"], generated_at="today", preamble="Why.",
    )
    assert "| Passages | p50 | p95 |\n|---|---|---|\n| 1,000 | 12.5 | 30.2 |" in text
    assert "a\\|b" in text  # a pipe in a cell does not break the table
    assert "| Speed and scale | p50 at 10k | 14.0 ms | <= 20 ms | met |" in text
    assert "## GPU" in text and "No CUDA GPU." in text


def test_a_part_without_stored_results_keeps_what_the_report_file_had(tmp_path):
    """``--only`` in a fresh checkout (no stored results) must not wipe the other parts of docs/BENCHMARKS.md."""
    scale = Section(name="scale", title="Speed and scale", ran_at="yesterday")
    scale.table("Search latency (ms)", ["Passages", "p50"], [["1,000", 12.5]])
    scale.target("p50 at 10k", value="14.0 ms", limit="<= 20 ms", met=True, note="old run")
    serving = Section(name="serving", title="Serving")
    serving.target("API p50", value="146 ms", limit="<= 50 ms", met=False)
    common = {"machine": {"CPU": "test"}, "versions": {"numpy": "2"}, "commands": ["make bench"], "preamble": "Why."}
    first = report.document([scale, serving, results.skipped("gpu", "GPU", "Not run yet in this mode.")], generated_at="yesterday", **common)

    previous = report.previous_parts(first, ["Speed and scale", "Serving", "GPU"])
    assert set(previous) == {"Speed and scale", "Serving"}  # a part that never ran is not worth keeping
    assert previous["Speed and scale"]["target_rows"] == ["| Speed and scale | p50 at 10k | 14.0 ms | <= 20 ms | met | old run |"]

    rerun = Section(name="serving", title="Serving")
    rerun.target("API p50", value="40 ms", limit="<= 50 ms", met=True)
    second = report.document(
        [results.kept("scale", "Speed and scale", **previous["Speed and scale"]), rerun, results.skipped("gpu", "GPU", "Not run yet in this mode.")],
        generated_at="today", **common,
    )
    assert first.split("## Speed and scale")[1].split("## Serving")[0] == second.split("## Speed and scale")[1].split("## Serving")[0]
    targets = second.split("## Targets")[1].split("## Speed and scale")[0]
    assert targets.index("| Speed and scale | p50 at 10k | 14.0 ms") < targets.index("| Serving | API p50 | 40 ms | <= 50 ms | met |")
    assert "146 ms" not in second


def test_report_only_run_without_stored_results_keeps_the_report_files_parts(tmp_path):
    """What a fresh worktree does (var/ is not versioned): the report is rewritten, every part that was there stays."""
    from bench.runner import BENCHMARKS

    serving = Section(name="serving", title=BENCHMARKS["serving"], ran_at="2026-11-27 03:56 UTC")
    serving.table("API search", ["Clients", "p50"], [[10, 146.0]])
    serving.target("API p50 at 10 clients", value="146 ms", limit="<= 50 ms", met=False)
    output = tmp_path / "BENCHMARKS.md"
    output.write_text(report.document([serving], machine={}, versions={}, commands=[], generated_at="before", preamble="Why."), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "bench", "--report-only", "--output", str(output), "--results-dir", str(tmp_path / "none")],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
    )
    text = output.read_text(encoding="utf-8")
    assert "generated_at" not in text and "on before." not in text  # rewritten
    assert f"## {BENCHMARKS['serving']}\n\n_Run 2026-11-27 03:56 UTC" in text and "| 10 | 146.0 |" in text
    assert f"| {BENCHMARKS['serving']} | API p50 at 10 clients | 146 ms | <= 50 ms | **not met** |" in text
    assert f"## {BENCHMARKS['gpu']}" in text  # the others are listed as not run


def test_bench_data_folder_is_found_from_a_git_worktree(tmp_path, monkeypatch):
    from bench import environment

    main, worktree = tmp_path / "main", tmp_path / "wt" / "branch"
    (main / ".git" / "worktrees" / "branch").mkdir(parents=True)
    (main / ".git" / "worktrees" / "branch" / "commondir").write_text("../..\n")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'branch'}\n")
    monkeypatch.delenv("LEXIQUE_DATA_DIR", raising=False)
    monkeypatch.setattr(environment, "ROOT", worktree)
    assert environment.data_dir() == tmp_path / "shared" / "data"
    monkeypatch.setattr(environment, "ROOT", main)
    assert environment.data_dir() == tmp_path / "shared" / "data"
    monkeypatch.setenv("LEXIQUE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert environment.data_dir() == tmp_path / "elsewhere"


@pytest.mark.slow
def test_in_process_latency_on_a_small_synthetic_index():
    from bench.models import default_model
    from bench.scale import STAGES, build_glossary, in_process_latency

    model, spec = default_model()
    glossary = build_glossary(200, model=model, spec=spec, encoded=40, extra_words=[])
    assert len(glossary.vectors) == 200 and len(glossary.lexical) == 100
    latency = in_process_latency({200: glossary}, [question.query for question in questions()[:8]], model=model, spec=spec, repeat=1)[200]
    total = latency["total"]
    assert total["n"] == 8
    assert 0 < total["p50"] <= total["p95"] < 10_000
    assert all(latency[stage]["p50"] >= 0 for stage in STAGES)
    assert latency["encode"]["p50"] > latency["fuse"]["p50"]


@pytest.mark.slow
def test_cli_runs_one_benchmark_and_writes_the_report(tmp_path):
    listed = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "sigles" in listed.stdout and "serving" in listed.stdout
    output = tmp_path / "BENCHMARKS.md"
    # The GPU benchmark is the cheapest to run anywhere: without CUDA it reports itself skipped and succeeds.
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "gpu", "--output", str(output), "--results-dir", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=600,
    )
    text = output.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "## Targets" in text and "| Package | Version |" in text
    assert "## GPU: training and encoding on CUDA" in text
    assert Path(tmp_path / "results" / "gpu.json").exists()


def test_sigles_judging_counts_any_meaning_for_concept_and_the_asked_one_for_def_only():
    from bench.glossary_db import Target
    from bench.sigles import judge
    from bench.synthetic import Question

    caf_fire = Target(Question("CAF chez les pompiers", "CAF", "Chef Appui Feu", "ambiguous"), frozenset({1, 2}), frozenset({2}))
    cpam = Target(Question("c koi la cpam", "CPAM", "Caisse primaire d'assurance maladie", "typo"), frozenset({3}), frozenset({3}))
    # CAF: the other meaning first, the asked one second; CPAM: not in the top 10.
    scores = judge({"CAF chez les pompiers": [1, 2, 9], "c koi la cpam": [7, 8]}, [caf_fire, cpam])
    assert scores["concept"] == {"hit@1": 50.0, "hit@10": 50.0, "mrr@10": 50.0}
    assert scores["def_only"] == {"hit@1": 0.0, "hit@10": 50.0, "mrr@10": 25.0}


def test_question_split_is_stable_balanced_per_kind_and_disjoint():
    asked = questions()
    halves = {question.query: question_split(question.query) for question in asked}
    assert set(halves.values()) == {DEV, TEST}
    # Stable: from the normalised text only (case, accents, spaces), whatever the rest of the file holds.
    assert question_split("C'est quoi la  CAF ?") == question_split("c'est quoi la caf ?") == question_split("C'est quoi la CAF ?")
    assert [question_split(question.query) for question in reversed(asked)] == [halves[q.query] for q in reversed(asked)]
    dev = {fold(query) for query, half in halves.items() if half == DEV}
    test = {fold(query) for query, half in halves.items() if half == TEST}
    assert not dev & test
    for kind in {question.category for question in asked}:
        of_kind = [halves[question.query] for question in asked if question.category == kind]
        assert 0.3 <= of_kind.count(TEST) / len(of_kind) <= 0.7, kind


def test_sigles_tuning_chooses_the_best_dev_setting_that_keeps_every_kind_at_or_above_the_base_model():
    from bench.sigles_tuning import admissible, choose

    def scores(acronym, reverse, overall, mrr=0.0):
        return {"acronym": {"hit@1": acronym}, "reverse": {"hit@1": reverse}, "all": {"hit@1": overall, "mrr@10": mrr}}

    base = scores(90.0, 20.0, 50.0)
    results = {
        ("templates", 1.0): scores(80.0, 60.0, 70.0),  # the best overall, but acronym look-ups lose: refused
        ("questions", 1.0): scores(90.0, 40.0, 60.0, mrr=65.0),
        ("questions", 0.5): scores(92.0, 38.0, 60.0, mrr=65.0),  # tie on Hit@1 and MRR: the smaller weight
        ("questions", 0.25): scores(91.0, 30.0, 55.0),
    }
    assert not admissible(results[("templates", 1.0)], base) and admissible(results[("questions", 1.0)], base)
    assert choose(results, base) == ("questions", 0.5)
    assert choose({("templates", 1.0): results[("templates", 1.0)]}, base) is None
