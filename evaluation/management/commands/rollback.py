from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations

from evaluation.management.commands._common import user_from_name
from retrieval import versions as retrieval_versions


class Command(BaseCommand):
    help = "Serve the previous champion again, now (its index is rebuilt first), with the reason for the audit log."

    def add_arguments(self, parser):
        parser.add_argument("--reason", required=True)
        parser.add_argument("--user", help="username recorded in the audit log")

    @no_translations
    def handle(self, *args, **options):
        if not options["reason"].strip():
            raise CommandError("--reason must not be empty.")
        try:
            event = retrieval_versions.model_version_rollback(user=user_from_name(options["user"]), reason=options["reason"].strip())
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"{event.version} serves again (was {event.previous_champion})."))
