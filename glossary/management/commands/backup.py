"""python manage.py backup PATH: the whole installation (database content and artifact files) in one archive."""
from django.core.management.base import BaseCommand, no_translations

from config.backup import backup_write


class Command(BaseCommand):
    help = "Back up the database (every app) and the artifact files into one .tar.gz archive."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Archive to write, for example lexique-2025-01-31.tar.gz")

    @no_translations
    def handle(self, *args, path: str, **options):
        summary = backup_write(path=path)
        self.stdout.write(self.style.SUCCESS(
            f"Backup written to {summary.path}: {summary.total_rows} rows, {len(summary.artifacts)} artifact files."
        ))
