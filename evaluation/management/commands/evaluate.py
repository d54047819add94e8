import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations

from config.stored_messages import render, render_all
from evaluation import real_questions, services
from evaluation import runs as evaluation_runs
from evaluation.management.commands._common import percent, version_from_ref
from evaluation.models import EvaluationRun
from evaluation.reports import HIT_AT_1, HIT_AT_5, HIT_AT_10, MRR_AT_10, NDCG_AT_10, RECALL_AT_10, EvaluationReport, metric_label

TABLE_METRICS = (HIT_AT_1, HIT_AT_5, HIT_AT_10, MRR_AT_10, NDCG_AT_10, RECALL_AT_10)
PROTOCOL_CHOICES = {"concept": ["concept"], "def-only": ["def_only"], "both": ["concept", "def_only"]}


class Command(BaseCommand):
    help = (
        "Evaluate a model version on the frozen test set, or real questions (a query file, the held-out labelled "
        "questions) over the whole validated glossary, and print its metrics."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the model version here, not Django's version: ours replaces the built-in option.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", default="champion", help="base, champion, a number (v3) or id:12 (default: champion)")
        parser.add_argument("--queries", help='JSONL query file: {"query", "term", "definition"?} or {"query", "entry_ids"} per line')
        parser.add_argument(
            "--scope", choices=["glossary", "test"],
            help="glossary (default with --queries): real questions over the whole validated glossary, per kind; "
                 "test: the query file's entries on the test side of the frozen split, with the protocols",
        )
        parser.add_argument("--held-out", action="store_true", help="the installation's held-out labelled questions, over the whole glossary")
        parser.add_argument(
            "--with-known-questions", action="store_true",
            help="keep known-question passages in the ranking (what users see today); by default the model alone is judged",
        )
        parser.add_argument("--protocol", choices=sorted(PROTOCOL_CHOICES), default="both")
        parser.add_argument("--mode", action="append", choices=["hybrid", "dense", "lexical"], help="repeatable (default: dense and hybrid)")
        parser.add_argument("--json", action="store_true", help="print the whole report as JSON")

    @no_translations
    def handle(self, *args, **options):
        version = version_from_ref(options["version"])
        scope = options["scope"] or ("glossary" if options["queries"] or options["held_out"] else "test")
        if options["held_out"] and options["queries"]:
            raise CommandError("Give --queries FILE or --held-out, not both.")
        if scope == "glossary":
            return self._real_questions(version, options)
        if options["held_out"]:
            raise CommandError("--held-out evaluates over the whole glossary: drop --scope test.")
        queries, errors, source = None, [], ""
        if options["queries"]:
            path = Path(options["queries"])
            if not path.is_file():
                raise CommandError(f"No such query file: {path}")
            queries, errors = services.queries_from_file(data=path.read_bytes())
            source = path.name
            for error in errors:
                self.stderr.write(f"{path.name}, line {error.line}: {render(error.message)}")
            if not queries:
                raise CommandError("The query file holds no usable query.")
        try:
            run = evaluation_runs.evaluation_run_create(
                version=version, modes=options["mode"] or list(services.DEFAULT_MODES), protocols=PROTOCOL_CHOICES[options["protocol"]],
                queries=queries, query_errors=errors, query_source=source,
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        run = evaluation_runs.evaluation_run_execute(run_id=run.pk)
        if run.status != EvaluationRun.Status.SUCCEEDED:
            raise CommandError(f"Evaluation {run.pk} of {version} failed: {run.error}")
        if options["json"]:
            self.stdout.write(json.dumps(render_all({
                "evaluation_id": run.pk, "version": version.display_name, "test_set_hash": run.test_set_hash,
                "query_count": run.query_count, "passage_count": run.passage_count, "query_errors": run.query_errors,
                "report": run.report, "similarity": run.similarity, "ragas": run.ragas,
            }), ensure_ascii=False, indent=2))
            return
        self.stdout.write(f"Evaluation {run.pk} of {version} ({version.base_model}): {run.query_count} queries, "
                          f"{run.passage_count} passages, test set {run.test_set_hash[:12]}")
        header = f"{'mode':<8} {'protocol':<9} " + " ".join(f"{metric.label:>9}" for metric in TABLE_METRICS)
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for mode, protocol, data in EvaluationReport.from_dict(run.report).tables():
            values = " ".join(f"{percent(metric.of(data.overall)):>9}" for metric in TABLE_METRICS)
            self.stdout.write(f"{mode:<8} {protocol:<9} {values}")
            for domain, group in data.by_domain.items():
                self.stdout.write(f"{'':<8}   {domain[:30]:<30} ({group.queries} q.) {MRR_AT_10.label} {percent(MRR_AT_10.of(group.metrics))}")
        similarity = run.similarity
        if similarity:
            self.stdout.write(
                f"similarity: term->definition {percent(similarity['term_to_definition']['accuracy'])}, "
                f"question->definition {percent(similarity['question_to_definition']['accuracy'])}, "
                f"screened negatives {percent(similarity['screened_negatives']['separation'])}, "
                f"snapshot negatives {percent(similarity['snapshot_negatives']['separation'])}"
            )
        for name, summary in run.ragas.get("metrics", {}).items():
            self.stdout.write(f"ragas {name}: {percent(summary['mean'])}")

    def _real_questions(self, version, options) -> None:
        """Real questions through the product's search over the whole validated glossary, per kind."""
        if options["held_out"]:
            questions, errors, source = real_questions.real_questions_from_labelled(held_out=True), [], "held-out labelled questions"
        elif options["queries"]:
            path = Path(options["queries"])
            if not path.is_file():
                raise CommandError(f"No such query file: {path}")
            questions, errors = real_questions.real_questions_from_file(data=path.read_bytes())
            source = path.name
            for error in errors:
                self.stderr.write(f"{path.name}, line {error.line}: {render(error.message)}")
        else:
            raise CommandError("--scope glossary needs --queries FILE or --held-out.")
        if not questions:
            raise CommandError(f"No usable question ({len(errors)} unresolved line(s)).")
        modes = options["mode"] or ["hybrid"]
        results = [
            real_questions.evaluate_real_questions(
                version=version, questions=questions, mode=mode, exclude_known_questions=not options["with_known_questions"], unresolved=errors
            )
            for mode in modes
        ]
        if options["json"]:
            self.stdout.write(json.dumps(render_all({
                "version": version.display_name, "scope": "glossary", "source": source, "question_count": len(questions),
                "unresolved_count": len(errors), "results": [result.as_dict() for result in results],
            }), ensure_ascii=False, indent=2))
            return
        self.stdout.write(
            f"Real questions of {source} on {version} over the whole validated glossary: {len(questions)} questions, "
            f"{len(errors)} unresolved line(s){'' if options['with_known_questions'] else ', known questions left out'}"
        )
        labels = [metric_label(key) for key in ("hit@1", "hit@10", "mrr@10")]
        header = f"{'mode':<8} {'kind':<12} {'questions':>9} " + " ".join(f"{label:>7}" for label in labels)
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for result in results:
            for kind, metrics in [("all", result.overall), *result.by_kind.items()]:
                self.stdout.write(
                    f"{result.mode:<8} {kind:<12} {metrics.questions:>9} {percent(metrics.hit_at_1):>7} {percent(metrics.hit_at_10):>7} {percent(metrics.mrr_at_10):>7}"
                )
