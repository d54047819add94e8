"""The workbench on a 1366x900 laptop screen: an item with nine long candidates still shows every decision
button without scrolling (the action bar sticks to the bottom of the screen)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from retrieval import selectors as retrieval_selectors
from retrieval.models import Flag, QuestionLog
from tests.browser.conftest import TIMEOUT_MS, log_in, save_screenshot
from tests.factories import DomainFactory, EntryFactory
from jobs.models import Job
from training import workbench
from training.models import QueueRefresh, ReviewItem

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

LONG_DEFINITION = (
    "Organisme public chargé, dans chaque région, de mettre en œuvre la politique nationale dans son domaine, de "
    "coordonner les acteurs locaux, de contrôler les établissements et de rendre compte chaque année de son action "
    "devant les autorités de tutelle et le public, selon des modalités fixées par décret."
)


def _flag_with_nine_candidates(expert) -> None:
    domain = DomainFactory(name="Fiscalité")
    entries = [EntryFactory(term=f"SIGLE{i}", domain=domain, definition=f"{LONG_DEFINITION} ({i})") for i in range(9)]
    hits = [
        {"entry_id": entry.pk, "term": entry.term, "domain": domain.name, "passage_type": "definition", "passage_text": entry.definition,
         "dense_score": 0.6 - rank / 100, "lexical_score": None, "dense_rank": rank, "lexical_rank": None, "rank": rank}
        for rank, entry in enumerate(entries, start=1)
    ]
    log = QuestionLog.objects.create(question="quel organisme contrôle les établissements de ma région ?", hits=hits)
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=hits, domain=domain, comment="Aucun ne convient vraiment.")
    workbench.review_items_upsert(source=ReviewItem.Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()
    # The queue has been computed: the page must not start a refresh (that would load the model in this test).
    QueueRefresh.objects.create(job=Job.objects.create(kind="queue_refresh", status=QueueRefresh.Status.SUCCEEDED))


def test_decision_buttons_are_on_screen_at_1366x900(browser, live_server, expert):
    _flag_with_nine_candidates(expert)
    context = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        log_in(page, username="expert", password="pw-expert")
        page.goto("/workbench/")
        panel = page.locator("#workbench-item")
        expect(panel).to_have_attribute("data-item-id", str(ReviewItem.objects.get().pk))
        buttons = panel.locator("form.decisions button[data-key]")
        assert buttons.count() == 12  # nine candidates, reject, skip... and the accept of the flag
        page.evaluate("window.scrollTo(0, 0)")
        for index in range(buttons.count()):
            expect(buttons.nth(index)).to_be_in_viewport(ratio=1)
        # The page really is taller than the screen: without the sticky bar the buttons would be below the fold.
        assert page.evaluate("document.documentElement.scrollHeight") > 900
        save_screenshot(page, "workbench-1366x900")
    finally:
        context.close()
