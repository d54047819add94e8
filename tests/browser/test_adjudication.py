"""Several experts in a real browser: two experts decide the same flag differently (neither sees the other's
answer), a maintainer sees it pending on the training page and settles it with one key on the adjudication
page; the settled decision is in the training pairs (and snapshot) built for the next run, and the agreement
page shows the numbers."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from config.roles import EXPERT, assign_role
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval.models import Flag, QuestionLog
from tests.browser.conftest import log_in, log_out, save_screenshot
from tests.factories import DomainFactory, EntryFactory
from training import selectors, workbench
from training.builder import build_pairs
from training.models import QueueRefresh, ReviewDecision, ReviewItem
from training.snapshot import snapshot_of

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

QUESTION = "quel organisme recouvre les cotisations sociales ?"


def _disputable_flag(expert, maintainer):
    domain = DomainFactory(name="Social")
    entries = [
        EntryFactory(term=term, domain=domain, split="train", definition=definition)
        for term, definition in (
            ("CAF", "Caisse d'allocations familiales, qui verse les prestations familiales."),
            ("URSSAF", "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales."),
            ("CPAM", "Caisse primaire d'assurance maladie, qui rembourse les soins."),
        )
    ]
    hits = [
        {"entry_id": entry.pk, "term": entry.term, "domain": domain.name, "passage_type": "definition", "passage_text": entry.definition,
         "dense_score": 0.6 - rank / 100, "lexical_score": None, "dense_rank": rank, "lexical_rank": None, "rank": rank}
        for rank, entry in enumerate(entries, start=1)
    ]
    log = QuestionLog.objects.create(question=QUESTION, hits=hits)
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=hits, domain=domain)
    workbench.review_items_upsert(source=ReviewItem.Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()
    # The queue has been computed: the page must not start a refresh (that would load the model in this test).
    QueueRefresh.objects.create(job=Job.objects.create(kind="queue_refresh", status=QueueRefresh.Status.SUCCEEDED))
    workbench.review_overlap_set(source=ReviewItem.Source.FLAG, required=2, user=maintainer)
    return entries


def _next_run_pairs():
    concepts = selectors.train_concepts()
    flags = selectors.training_flags(train_entry_ids={concept.entry_id for concept in concepts})
    return build_pairs(concepts=concepts, flags=flags, test_entry_ids=selectors.test_entry_ids())


def test_two_experts_disagree_a_maintainer_adjudicates_and_the_decision_is_trained_on(page, live_server, expert, maintainer):
    second = get_user_model().objects.create_user(username="expert2", password="pw-expert2")
    assign_role(second, EXPERT)
    caf, urssaf, _cpam = _disputable_flag(expert, maintainer)
    item = ReviewItem.objects.get()

    # First expert: "1" (CAF).
    log_in(page, username="expert", password="pw-expert")
    page.goto("/workbench/")
    panel = page.locator("#workbench-item")
    expect(panel).to_have_attribute("data-item-id", str(item.pk))
    page.keyboard.press("1")
    expect(page.locator("#workbench-item .notice.success")).to_contain_text("Décision enregistrée")
    expect(page.locator("#workbench-item")).not_to_have_attribute("data-item-id", str(item.pk))
    assert Flag.objects.get().correct_entry_id is None  # a vote, not yet a decision
    log_out(page)

    # Second expert: served the same item, without the first answer anywhere on the page; "2" (URSSAF).
    log_in(page, username="expert2", password="pw-expert2")
    page.goto("/workbench/")
    expect(panel).to_have_attribute("data-item-id", str(item.pk))
    assert "expert" not in panel.inner_text().replace("expert2", "")
    assert "déjà" not in panel.inner_text()
    page.keyboard.press("2")
    expect(page.locator("#workbench-item .notice.success")).to_contain_text("Décision enregistrée")
    assert ReviewItem.objects.get().status == "disputed" and Flag.objects.get().correct_entry_id is None
    assert not [pair for pair in _next_run_pairs() if pair.anchor == QUESTION]
    log_out(page)

    # The maintainer sees it pending on the training page, then settles it with one key.
    log_in(page, username="maintainer", password="pw-maintainer")
    page.goto("/training/")
    expect(page.locator("#pending-disputed")).to_contain_text("1 élément à arbitrer")
    page.locator("#pending-disputed a").click()
    page.wait_for_url("**/workbench/adjudication/")
    votes = page.locator("#adjudication-votes")
    expect(votes).to_contain_text("expert : C'est la bonne entrée — CAF")
    expect(votes).to_contain_text("expert2 : C'est la bonne entrée — URSSAF")
    save_screenshot(page, "adjudication")
    page.keyboard.press("2")
    expect(page.locator("#workbench-item")).to_contain_text("Arbitrage enregistré")
    expect(page.locator("#workbench-item")).to_contain_text("Aucun désaccord à arbitrer")

    final = ReviewDecision.objects.get(item=item, applied=True, undone_at__isnull=True)
    assert (final.adjudication, final.user, final.candidate_id) == (True, maintainer, urssaf.pk)
    assert Flag.objects.get().correct_entry_id == urssaf.pk
    # The next run's training data: the question now points to URSSAF, with CAF (ranked above) as a negative.
    taught = [pair for pair in _next_run_pairs() if pair.anchor == QUESTION]
    assert [pair.entry_id for pair in taught] == [urssaf.pk]
    assert any(caf.definition in negative for negative in taught[0].negatives)
    records = [json.loads(line) for line in snapshot_of(_next_run_pairs()).jsonl_bytes.decode().splitlines()]
    assert any(record["anchor"] == QUESTION and urssaf.definition in json.dumps(record, ensure_ascii=False) for record in records)

    # The agreement page: one item compared, alpha 0 (two different values on one item), each expert against the final.
    page.goto("/workbench/agreement/")
    expect(page.locator("#alpha-units")).to_have_text("1")
    expect(page.locator("#alpha-overall")).to_have_text("0,000")
    experts = page.locator("#agreement-experts")
    expect(experts.locator("tr", has_text="expert2")).to_contain_text("100 % (1/1)")
    expect(experts.locator("tr", has=page.get_by_role("link", name="expert", exact=True))).to_contain_text("0 % (0/1)")
    expect(page.locator("#agreement-disputed")).to_contain_text(QUESTION)
    save_screenshot(page, "agreement")
