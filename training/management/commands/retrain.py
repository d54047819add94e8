import time

from django.core.management.base import BaseCommand, CommandError, no_translations

from training import pipeline, runs, services
from training.models import TrainingConfig, TrainingRun


class Command(BaseCommand):
    help = "Request a training run (same rules as the retrain button); --wait blocks until it ends."

    def add_arguments(self, parser):
        parser.add_argument("--wait", action="store_true", help="wait for the end; exit non-zero if the run failed")
        parser.add_argument("--config", help="name of a training config")
        parser.add_argument("--epochs", type=float)
        parser.add_argument("--max-pairs", type=int)
        parser.add_argument("--max-steps", type=int)
        parser.add_argument("--inline", action="store_true", help="run the whole cycle (training, evaluation, gate, promotion) in this process instead of a worker")
        parser.add_argument("--timeout", type=float, help="with --wait: give up (exit non-zero) after this many seconds")
        parser.add_argument("--no-worker-after", type=float, default=60.0, help="say that no worker took the job after this many seconds")

    @no_translations
    def handle(self, *args, **options):
        config = None
        if options["config"]:
            config = TrainingConfig.objects.filter(name=options["config"]).first()
            if config is None:
                raise CommandError(f"Unknown training config: {options['config']}")
        overrides = {"epochs": options["epochs"], "max_pairs": options["max_pairs"], "max_steps": options["max_steps"]}
        try:
            run = services.training_run_request(trigger=TrainingRun.Trigger.COMMAND, config=config, overrides=overrides)
        except services.TrainingAlreadyRunning as error:
            raise CommandError(f"{error.messages[0]} ({error.run.status})") from None
        self.stdout.write(f"Training run {run.pk} queued.")
        if options["inline"]:
            # The whole cycle in this process: training, then its evaluation, gate and promotion (no worker needed).
            runs.training_run_execute(run_id=run.pk)
            pipeline.cycle_execute_inline(run)
        if not (options["wait"] or options["inline"]):
            return
        last, warned, started = None, "", time.monotonic()
        while True:
            run.refresh_from_db()
            state = (run.status, run.progress_step)
            if state != last:
                self.stdout.write(f"  {run.status} {run.progress_step}/{run.progress_total}")
                last = state
            if not run.is_active:
                break
            # Nobody takes the job: say so once per step rather than wait in silence.
            warning = pipeline.no_worker_warning(run, after_s=options["no_worker_after"])
            if warning and warning.split("(")[0] != warned.split("(")[0]:
                self.stderr.write(warning)
            warned = warning or warned
            if options["timeout"] is not None and time.monotonic() - started > options["timeout"]:
                raise CommandError(f"Training run {run.pk} still {run.status} after {options['timeout']:.0f} s; it stays queued.")
            time.sleep(2)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"Training run {run.pk} ended {run.status}: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"Training run {run.pk} succeeded: version {run.model_version}."))
