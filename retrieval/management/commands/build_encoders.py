"""Export and check a version's ONNX query encoders: `python manage.py build_encoders [--version 3]`."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, no_translations

from retrieval import encoder_check, selectors
from retrieval.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Export a version's model to ONNX (fp32 and dynamic int8), compare each with torch on the frozen test queries "
        "and record which one serves its queries (the champion by default; redone even if already checked)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version (a model version) replaces Django's --version (the Django release).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", default="champion", help='"champion", "base", a version number or "id:<pk>"')

    @no_translations
    def handle(self, *args, **options):
        try:
            version = selectors.model_version_get(ref=options["version"])
        except ModelVersion.DoesNotExist as error:
            raise CommandError(str(error)) from None
        record = encoder_check.encoders_build(version=version)
        for name, check in record["variants"].items():
            verdict = "accepted" if check["passed"] else f"refused ({check['reason']})"
            self.stdout.write(
                f"{name}: {verdict}; cosine min {check['cosine_min']} mean {check['cosine_mean']}; "
                f"R@1 torch {check['recall_at_1_torch']} / {name} {check['recall_at_1_variant']}; {check['ms_per_query']} ms/query"
            )
        self.stdout.write(self.style.SUCCESS(f"{version}: queries are encoded by {record['served']}."))
