"""Build (or rebuild) the vector index of a model version: `python manage.py build_index [--version 3]`."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, no_translations

from retrieval import indexing, selectors
from retrieval.models import ModelVersion


class Command(BaseCommand):
    help = "Encode every validated glossary entry with a version's model and store its index (the champion by default)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version (a model version) replaces Django's --version (the Django release).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", default="champion", help='"champion", "base", a version number or "id:<pk>"')
        parser.add_argument("--if-missing", action="store_true", help="do nothing when the version already has an index")

    @no_translations
    def handle(self, *args, **options):
        try:
            version = selectors.model_version_get(ref=options["version"])
        except ModelVersion.DoesNotExist as error:
            raise CommandError(str(error)) from None
        existing = selectors.index_state_get(version=version)
        if options["if_missing"] and existing is not None and existing.has_artifact:
            self.stdout.write(f"Index of {version} already built (revision {existing.revision}).")
            return
        state = indexing.index_rebuild(version=version)
        self.stdout.write(
            self.style.SUCCESS(f"Index of {version}: revision {state.revision}, {state.entry_count} entries, {state.passage_count} passages.")
        )
