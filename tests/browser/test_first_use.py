"""Issue #17 in a real browser: an expert is warned before creating a second entry of a term, and a refused
import is run again skipping its bad rows."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from glossary.models import Entry, ImportBatch
from tests.browser.conftest import log_in
from tests.factories import EntryFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]

BAD_CSV = (
    "term,definition,domain,kind,variants,contexts\n"
    "CAF,Caisse d'allocations familiales,Social,acronym,,\n"
    "URSSAF,,Social,acronym,,\n"
).encode()


def test_same_term_warning_and_import_retried_skipping_bad_rows(page: Page, expert):
    existing = EntryFactory(term="ANTS", kind="acronym", definition="Agence nationale des titres sécurisés.")
    log_in(page, username="expert", password="pw-expert")

    page.goto("/glossary/entries/new/")
    page.get_by_label("Terme ou sigle").fill("ants")
    page.get_by_label("Définition").fill("Fourmis, en anglais.")
    page.get_by_role("button", name="Enregistrer").click()
    warning = page.locator("#same-term-warning")
    expect(warning).to_contain_text("est déjà dans le glossaire")
    expect(warning.get_by_role("link", name="ANTS")).to_have_attribute("href", f"/glossary/entries/{existing.pk}/")
    page.get_by_role("button", name="C'est un nouveau sens : enregistrer").click()
    page.wait_for_url("**/glossary/entries/*/")
    assert Entry.objects.filter(term_key="ants").count() == 2

    page.goto("/glossary/imports/new/")
    page.get_by_label("Fichier").set_input_files({"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV})
    page.get_by_role("button", name="Analyser le fichier").click()
    page.get_by_role("button", name="Lancer l'import").click()
    expect(page.locator("#import-batch-status")).to_contain_text("Import échoué")
    expect(page.locator(".messages .success")).to_have_count(0)
    page.get_by_role("button", name="Relancer en ignorant les lignes invalides").click()
    expect(page.locator("#import-batch-status")).to_contain_text("Import terminé : 1 entrée créée.")
    assert ImportBatch.objects.with_status(ImportBatch.Status.IMPORTED).count() == 1
