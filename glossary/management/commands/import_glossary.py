"""Import a glossary file from the command line (the same import as the web page and the API)."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, no_translations

from glossary.imports import FORMATS, IMPORT_STATUSES, PINNED_SPLITS, ImportRefused, import_file


class Command(BaseCommand):
    help = "Import a glossary file (csv, jsonl, xlsx, sigles, bercy, baconnier); nothing is imported when a row is invalid unless --skip-invalid."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", dest="file_format", required=True, choices=FORMATS)
        parser.add_argument("--domain", help="Domain of the rows that name none (created if missing).")
        parser.add_argument("--status", default="draft", choices=[str(status) for status in IMPORT_STATUSES])
        parser.add_argument("--split", default="", choices=[str(split) for split in PINNED_SPLITS], help="Pin every imported entry to this split.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report what would be imported; write nothing.")
        parser.add_argument("--skip-invalid", action="store_true", help="Import the valid rows even when some rows are invalid.")

    @no_translations
    def handle(self, *args, path: Path, file_format: str, domain, status, split, dry_run, skip_invalid, **options):
        try:
            content = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from error
        try:
            report = import_file(
                content=content, file_name=path.name, file_format=file_format, domain=domain, status=status,
                split=split, dry_run=dry_run, skip_invalid=skip_invalid,
            )
        except ImportRefused as refusal:
            raise CommandError(f"Import refused: {refusal}") from refusal
        for error in report.errors:
            self.stdout.write(f"line {error.line}: {error.reason}")
        verb = "would create" if dry_run else "created"
        summary = (
            f"{report.total_rows} rows, {report.valid_rows} valid: {verb} {report.created}, "
            f"updated {report.updated}, unchanged {report.unchanged}, invalid rows {len(report.errors)}."
        )
        if report.errors and not skip_invalid:
            raise CommandError(f"{summary} Nothing imported: fix the rows above or use --skip-invalid.")
        if dry_run:
            self.stdout.write(f"Dry run, nothing written. {summary}")
        else:
            self.stdout.write(self.style.SUCCESS(f"Import #{report.batch_id}: {summary}"))
