"""Export a version as a sentence-transformers folder: `python manage.py export_model VERSION PATH`."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, no_translations

from retrieval import selectors
from retrieval.encoders_export import ExportError, version_export
from retrieval.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Write a model version (merged weights, tokenizer, prompts, checked ONNX files, model card) into PATH, "
        "loadable with SentenceTransformer(PATH)."
    )

    def add_arguments(self, parser):
        parser.add_argument("version", help='"champion", "base", a version number ("3" or "v3") or "id:<pk>"')
        parser.add_argument("path", help="destination folder (absent or empty)")

    @no_translations
    def handle(self, *args, **options):
        try:
            version = selectors.model_version_get(ref=options["version"])
        except ModelVersion.DoesNotExist as error:
            raise CommandError(str(error)) from None
        try:
            folder = version_export(version=version, path=options["path"])
        except ExportError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"{version} exported to {folder} (SentenceTransformer(\"{folder}\") loads it)."))
