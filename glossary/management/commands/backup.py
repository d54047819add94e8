"""python manage.py backup PATH: the whole installation (database content and artifact files) in one archive."""
from django.core.management.base import BaseCommand

from config.backup import backup_write


class Command(BaseCommand):
    help = "Sauvegarde la base (toutes les applications) et les fichiers d'artefacts dans une archive .tar.gz."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Archive à écrire, par exemple lexique-2025-01-31.tar.gz")

    def handle(self, *args, path: str, **options):
        summary = backup_write(path=path)
        self.stdout.write(self.style.SUCCESS(
            f"Sauvegarde écrite dans {summary.path} : {summary.total_rows} lignes, {len(summary.artifacts)} fichiers d'artefacts."
        ))
