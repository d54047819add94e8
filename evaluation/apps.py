from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = _("Evaluation")

    def ready(self) -> None:
        from django.urls import reverse

        from evaluation import gating, leaderboard, tasks
        from evaluation import runs as evaluation_runs
        from jobs.kinds import JobKind, register

        # Evaluations log each stage (encoding, each protocol); past the hard time limit nothing still runs them.
        stale = timedelta(seconds=tasks.EVALUATION_TIME_LIMIT_S + 600)
        register(JobKind(
            name=evaluation_runs.EVALUATION_KIND, label=_("Evaluation"), stale_after=stale, send=evaluation_runs.evaluation_run_send,
            url=lambda job: reverse("evaluation:version-report", args=[job.evaluation_run.version_id]),
        ))
        register(JobKind(
            name=gating.GATE_KIND, label=_("Promotion decision"), stale_after=stale, send=gating.gate_send,
            url=lambda job: reverse("evaluation:version-list"),
        ))
        # Queued from the leaderboard page (a worker runs it), or run by the ``benchmark`` command in its own process.
        register(JobKind(
            name=leaderboard.LEADERBOARD_KIND, label=_("Leaderboard"), stale_after=timedelta(seconds=tasks.LEADERBOARD_TIME_LIMIT_S + 600),
            send=leaderboard.leaderboard_send, url=lambda job: reverse("evaluation:leaderboard"),
        ))
