import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from evaluation import services
from evaluation.management.commands._common import percent, version_from_ref
from evaluation.models import EvaluationRun

TABLE_METRICS = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10")
PROTOCOL_CHOICES = {"concept": ["concept"], "def-only": ["def_only"], "both": ["concept", "def_only"]}


class Command(BaseCommand):
    help = "Evaluate a model version on the frozen test set (or a query file) and print its metrics."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the model version here, not Django's version: ours replaces the built-in option.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", default="champion", help="base, champion, a number (v3) or id:12 (default: champion)")
        parser.add_argument("--queries", help='JSONL query file: {"query", "term", "definition"?} or {"query", "entry_ids"} per line')
        parser.add_argument("--protocol", choices=sorted(PROTOCOL_CHOICES), default="both")
        parser.add_argument("--mode", action="append", choices=["hybrid", "dense", "lexical"], help="repeatable (default: dense and hybrid)")
        parser.add_argument("--json", action="store_true", help="print the whole report as JSON")

    def handle(self, *args, **options):
        version = version_from_ref(options["version"])
        queries, errors, source = None, [], ""
        if options["queries"]:
            path = Path(options["queries"])
            if not path.is_file():
                raise CommandError(f"No such query file: {path}")
            queries, errors = services.queries_from_file(data=path.read_bytes())
            source = path.name
            for error in errors:
                self.stderr.write(f"{path.name}, line {error.line}: {error.message}")
            if not queries:
                raise CommandError("The query file holds no usable query.")
        try:
            run = services.evaluation_run_create(
                version=version, modes=options["mode"] or list(services.DEFAULT_MODES), protocols=PROTOCOL_CHOICES[options["protocol"]],
                queries=queries, query_errors=errors, query_source=source,
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        run = services.evaluation_run_execute(run_id=run.pk)
        if run.status != EvaluationRun.Status.SUCCEEDED:
            raise CommandError(f"Evaluation {run.pk} of {version} failed: {run.error}")
        if options["json"]:
            self.stdout.write(json.dumps({
                "evaluation_id": run.pk, "version": version.display_name, "test_set_hash": run.test_set_hash,
                "query_count": run.query_count, "passage_count": run.passage_count, "query_errors": run.query_errors,
                "report": run.report, "similarity": run.similarity, "ragas": run.ragas,
            }, ensure_ascii=False, indent=2))
            return
        self.stdout.write(f"Evaluation {run.pk} of {version} ({version.base_model}): {run.query_count} queries, "
                          f"{run.passage_count} passages, test set {run.test_set_hash[:12]}")
        header = f"{'mode':<8} {'protocol':<9} " + " ".join(f"{name:>9}" for name in TABLE_METRICS)
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for mode, report in run.report.items():
            for protocol, data in report["protocols"].items():
                values = " ".join(f"{percent(data['overall'].get(name)):>9}" for name in TABLE_METRICS)
                self.stdout.write(f"{mode:<8} {protocol:<9} {values}")
                for domain, group in data["by_domain"].items():
                    self.stdout.write(f"{'':<8}   {domain[:30]:<30} ({group['queries']} q.) MRR@10 {percent(group['metrics'].get('mrr@10'))}")
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
