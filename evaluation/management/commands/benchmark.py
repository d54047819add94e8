from django.core.management.base import BaseCommand, CommandError, no_translations

from evaluation import leaderboard, selectors, services
from evaluation.reports import HIT_AT_1, MRR_AT_10
from evaluation.management.commands._common import percent, user_from_name, version_from_ref
from retrieval import selectors as retrieval_selectors


class Command(BaseCommand):
    help = ("Benchmark catalogue base models and model versions on the same test queries, in one run, and store the "
            "leaderboard. A base model that cannot be loaded on this machine is listed as skipped, with the reason. Runs in "
            "this process; the leaderboard page's button queues the same work for a worker.")

    def add_arguments(self, parser):
        parser.add_argument("--models", nargs="+", default=None, help="catalogue names (default: the whole catalogue)")
        parser.add_argument("--versions", nargs="+", default=None, help="version references (default: the champion)")
        parser.add_argument("--mode", action="append", choices=["hybrid", "dense", "lexical"], help="repeatable (default: dense and hybrid)")
        parser.add_argument("--user", help="username recorded on the leaderboard")

    @no_translations
    def handle(self, *args, **options):
        names = options["models"] if options["models"] is not None else sorted(retrieval_selectors.catalogue_specs())
        versions = [version_from_ref(ref) for ref in (options["versions"] if options["versions"] is not None else ["champion"])]
        try:
            board = leaderboard.leaderboard_run(
                model_names=names, versions=versions, modes=options["mode"] or list(services.DEFAULT_MODES),
                user=user_from_name(options["user"]),
            )
        except leaderboard.LeaderboardAlreadyRunning as error:
            raise CommandError(f"A leaderboard is already queued or being computed (job {error.board.job_id}): wait for it to end.") from error
        except Exception as error:
            raise CommandError(f"Benchmark failed: {error}") from error
        self.stdout.write(f"Leaderboard {board.pk}: {board.query_count} queries, test set {board.test_set_hash[:12]}")
        for row in selectors.leaderboard_rows(board):
            if row.skipped:
                self.stdout.write(f"{row.name:<45} skipped: {row.reason.splitlines()[0][:160]}")
                continue
            cells = []
            for mode, protocols in row.metrics.items():
                for protocol, overall in protocols.items():
                    cells.append(" ".join([f"{mode}/{protocol}", *(f"{metric.label} {percent(metric.of(overall))}" for metric in (HIT_AT_1, MRR_AT_10))]))
            self.stdout.write(f"{row.name:<45} " + "; ".join(cells))
