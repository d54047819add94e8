"""Search the glossary from the shell: `python manage.py search "c'est quoi l'urssaf" --top-k 5 --json`."""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations

from retrieval import selectors
from retrieval.hybrid import MODES as SEARCH_MODES
from retrieval.search import hit_as_dict, search, search_payload
from retrieval.models import ModelVersion


class Command(BaseCommand):
    help = "Search the validated glossary with a model version (the champion by default)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version (a model version) replaces Django's --version (the Django release).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--top-k", type=int, default=10)
        parser.add_argument("--version", default="champion", help='"champion", "base", a version number or "id:<pk>"')
        parser.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
        parser.add_argument("--no-preprocess", action="store_true", help="search the query exactly as written")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    @no_translations
    def handle(self, *args, **options):
        try:
            version = selectors.model_version_get(ref=options["version"])
            result = search(
                query=options["query"], top_k=options["top_k"], version=version, mode=options["mode"], preprocess=not options["no_preprocess"]
            )
        except ModelVersion.DoesNotExist as error:
            raise CommandError(str(error)) from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if options["json"]:
            self.stdout.write(json.dumps(search_payload(result), ensure_ascii=False, indent=2))
            return
        hits = [hit_as_dict(item) for item in result.hits]
        if result.processed and result.processed.final != result.query:
            self.stdout.write(f"Processed query: {result.processed.final}")
        for hit in hits:
            dense = "—" if hit["dense_score"] is None else f"{hit['dense_score']:.3f}"
            lexical = "—" if hit["lexical_score"] is None else f"{hit['lexical_score']:.2f}"
            exact = " [exact]" if hit["exact_match"] else ""
            self.stdout.write(f"{hit['rank']:>3}. {hit['term']}{exact}  (dense {dense}, bm25 {lexical}, rrf {hit['fused_score']:.4f})")
            self.stdout.write(f"     {hit['passage_type'] or 'definition'}: {hit['passage_text'][:160]}")
        self.stdout.write(self.style.SUCCESS(f"{len(hits)} result(s), version {result.version}, {result.timings_ms.get('total', 0):.0f} ms"))
