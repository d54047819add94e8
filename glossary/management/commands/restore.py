"""python manage.py restore PATH [--force]: put a backup back into a migrated, empty database."""
from django.core.management.base import BaseCommand, CommandError

from config.backup import BackupRefused, restore_read


class Command(BaseCommand):
    help = "Restaure une sauvegarde (base et artefacts) dans une base migrée et vide."

    def add_arguments(self, parser):
        parser.add_argument("path", help="Archive écrite par `manage.py backup`.")
        parser.add_argument("--force", action="store_true", help="Vide d'abord une base qui contient déjà des données.")

    def handle(self, *args, path: str, force: bool, **options):
        try:
            summary = restore_read(path=path, force=force)
        except BackupRefused as refusal:
            raise CommandError(str(refusal)) from refusal
        self.stdout.write(self.style.SUCCESS(
            f"Sauvegarde du {summary.created_at} restaurée : {summary.total_rows} lignes, {len(summary.artifacts)} fichiers d'artefacts. "
            "Reconstruisez les index si le glossaire a changé depuis : `manage.py build_index`."
        ))
