"""Export the whole glossary to a file that import_glossary reads back."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, no_translations

from glossary.imports import EXPORT_FORMATS, export_glossary


class Command(BaseCommand):
    help = "Export every glossary entry as csv, jsonl or xlsx (to --output, or to standard output for csv and jsonl)."

    def add_arguments(self, parser):
        parser.add_argument("--format", dest="file_format", required=True, choices=EXPORT_FORMATS)
        parser.add_argument("--output", type=Path, help="File to write; standard output when absent (text formats only).")

    @no_translations
    def handle(self, *args, file_format: str, output: Path | None, **options):
        if output is None and file_format == "xlsx":
            raise CommandError("The xlsx format needs --output.")
        content = export_glossary(file_format=file_format)
        if output is None:
            self.stdout.write(content.decode("utf-8-sig"), ending="")
            return
        try:
            output.write_bytes(content)
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}") from error
        self.stdout.write(self.style.SUCCESS(f"Exported to {output} ({len(content)} bytes)."))
