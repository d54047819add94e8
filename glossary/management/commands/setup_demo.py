"""Make a fresh install usable: role groups, the demo glossary and one account per role."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, no_translations

from config.roles import ADMIN, EXPERT, MAINTAINER, assign_role, ensure_role_groups
from glossary.imports import ImportRefused, import_file
from glossary.models import Entry



def demo_url() -> str:
    """Where `make run` serves the site (scripts/run.sh reads the same HOST and PORT variables)."""
    return f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}/"
DEMO_ACCOUNTS = ((EXPERT, EXPERT), (MAINTAINER, MAINTAINER), ("admin", ADMIN))
CREDENTIALS_FILE_NAME = "demo-credentials.txt"


def default_demo_glossary() -> Path:
    return Path(apps.get_app_config("glossary").path) / "fixtures" / "demo_glossary.jsonl"


class Command(BaseCommand):
    help = (
        "Idempotent demo setup: role groups, the demo glossary (when the glossary is empty) and the users "
        "expert, maintainer and admin (passwords from DEMO_PASSWORD, else generated once into var/demo-credentials.txt)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--glossary", type=Path, default=None, help="JSONL glossary to load (default: the bundled demo glossary).")

    @no_translations
    def handle(self, *args, glossary: Path | None, **options):
        ensure_role_groups()
        self._load_glossary(glossary or default_demo_glossary())
        passwords = self._passwords()
        for username, role in DEMO_ACCOUNTS:
            self._ensure_user(username, role, passwords[username])
        self.stdout.write(self.style.SUCCESS(f"Lexique is ready: {demo_url()}"))
        for username, _role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {username} / {passwords[username]}")

    def _load_glossary(self, path: Path) -> None:
        if Entry.objects.exists():
            self.stdout.write("The glossary already has entries: demo glossary not loaded.")
            return
        if not path.exists():
            self.stdout.write(self.style.WARNING(f"No demo glossary at {path}: the glossary stays empty."))
            return
        try:
            report = import_file(content=path.read_bytes(), file_name=path.name, file_format="jsonl", status="validated", skip_invalid=True)
        except ImportRefused as refusal:
            raise CommandError(f"The demo glossary {path} cannot be imported: {refusal}") from refusal
        for error in report.errors:
            self.stdout.write(self.style.WARNING(f"line {error.line}: {error.reason}"))
        self.stdout.write(f"Demo glossary loaded: {report.created} entries.")

    def _passwords(self) -> dict[str, str]:
        """DEMO_PASSWORD for every account, else the passwords generated on the first run."""
        shared = os.environ.get("DEMO_PASSWORD")
        if shared:
            return {username: shared for username, _role in DEMO_ACCOUNTS}
        path = Path(settings.VAR_DIR) / CREDENTIALS_FILE_NAME
        stored = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                username, separator, password = line.partition(": ")
                if separator and not line.startswith("#"):
                    stored[username] = password
        passwords = {username: stored.get(username) or secrets.token_urlsafe(12) for username, _role in DEMO_ACCOUNTS}
        if passwords != stored:
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [f"# Lexique demo accounts for {demo_url()} (written by manage.py setup_demo; keep private)"]
            lines += [f"{username}: {password}" for username, password in passwords.items()]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            path.chmod(0o600)
        return passwords

    def _ensure_user(self, username: str, role: str, password: str) -> None:
        user, _created = get_user_model().objects.get_or_create(username=username)
        # Reset on every run so that the printed credentials always work.
        user.set_password(password)
        if role == ADMIN:
            user.is_staff = user.is_superuser = True
        user.save()
        assign_role(user, role)
