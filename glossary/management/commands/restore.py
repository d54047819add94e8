"""python manage.py restore PATH [--force]: put a backup back into a migrated, empty database."""
from django.core.management.base import BaseCommand, CommandError, no_translations

from config.backup import BackupRefused, restore_read


class Command(BaseCommand):
    help = "Restore a backup (database and artifacts) into a migrated, empty database."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Archive written by `manage.py backup`.")
        parser.add_argument("--force", action="store_true", help="Empty a database that already holds data first.")

    @no_translations
    def handle(self, *args, path: str, force: bool, **options):
        try:
            summary = restore_read(path=path, force=force)
        except BackupRefused as refusal:
            raise CommandError(str(refusal)) from refusal
        self.stdout.write(self.style.SUCCESS(
            f"Backup of {summary.created_at} restored: {summary.total_rows} rows, {len(summary.artifacts)} artifact files. "
            "Rebuild the indexes if the glossary changed since: `manage.py build_index`."
        ))
