from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations

from evaluation.management.commands._common import user_from_name, version_from_ref
from retrieval import versions as retrieval_versions
from retrieval.models import PromotionEvent


class Command(BaseCommand):
    help = "Make a ready model version the champion now (its index is built first), with the reason for the audit log."

    def add_arguments(self, parser):
        parser.add_argument("version", help="a number (v3 or 3), base, or id:12")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--user", help="username recorded in the audit log")

    @no_translations
    def handle(self, *args, **options):
        if not options["reason"].strip():
            raise CommandError("--reason must not be empty.")
        version = version_from_ref(options["version"])
        try:
            event = retrieval_versions.model_version_promote(
                version=version, user=user_from_name(options["user"]), reason=options["reason"].strip(), action=PromotionEvent.Action.PROMOTE
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"{event.version} is the champion (was {event.previous_champion or 'none'})."))
