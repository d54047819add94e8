"""The workbench page (htmx item panel, keyboard shortcuts, permissions) and the review queue API."""
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from config.roles import EXPERT, assign_role
from retrieval import selectors as retrieval_selectors
from retrieval.models import Flag, QuestionLog
from training import workbench
from training.models import QuestionLabel, QueueRefresh, ReviewDecision, ReviewItem
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_expert(db):
    user = get_user_model().objects.create_user(username="expert2", password="pw")
    assign_role(user, EXPERT)
    return user


def _hit(entry, rank):
    return {
        "entry_id": entry.pk, "term": entry.term, "domain": entry.domain.name, "passage_type": "definition", "passage_text": entry.definition,
        "dense_score": 0.6 - rank / 100, "lexical_score": None, "dense_rank": rank, "lexical_rank": None, "rank": rank,
    }


def _queue(expert, n=2, domain_names=("Fiscalité",)):
    """``n`` open flags per domain, each with three logged candidates, in the queue."""
    for name in domain_names:
        domain = DomainFactory(name=name)
        entries = [EntryFactory(domain=domain) for _ in range(3)]
        for i in range(n):
            log = QuestionLog.objects.create(question=f"question {name} {i}", hits=[_hit(entry, rank) for rank, entry in enumerate(entries, start=1)])
            Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits, domain=domain)
    workbench.review_items_upsert(source=ReviewItem.Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()


def _keys(html):
    return re.findall(r'data-key="([^"]+)"', html)


def test_reader_gets_403_and_anonymous_goes_to_login(client, reader, expert):
    _queue(expert)
    item = ReviewItem.objects.first()
    assert client.get(reverse("training:workbench")).status_code == 302
    client.force_login(reader)
    assert client.get(reverse("training:workbench")).status_code == 403
    assert client.post(reverse("training:workbench-decide", args=[item.pk]), {"action": "reject"}).status_code == 403
    assert client.post(reverse("training:workbench-undo")).status_code == 403
    assert not ReviewDecision.objects.exists()


def test_page_shows_one_item_with_its_candidates_shortcuts_and_counters(expert_client, expert):
    _queue(expert)
    page = expert_client.get(reverse("training:workbench")).content.decode()
    assert "<html" in page and "js/workbench.js" in page
    assert page.count('id="workbench-item"') == 1 and page.count('class="candidates"') == 1
    assert _keys(page) == ["1", "2", "3", "a", "r", "s", "o", "u"]
    assert "<kbd>1</kbd>" in page and "Signalement ouvert" in page and "question Fiscalité" in page
    assert 'id="workbench-counters"' in page and "avant le prochain entraînement planifié" in page
    leased = ReviewItem.objects.get(leased_by=expert)
    assert f'data-item-id="{leased.pk}"' in page


def test_htmx_decision_swaps_in_the_next_item_with_counters(expert_client, expert):
    _queue(expert)
    first = workbench.review_item_next(user=expert)
    entry_id = first.payload["candidates"][1]["entry_id"]
    response = expert_client.post(reverse("training:workbench-decide", args=[first.pk]), {"action": f"choose:{entry_id}"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Décision enregistrée" in html and 'hx-swap-oob="true"' in html
    second = ReviewItem.objects.get(leased_by=expert)
    assert second.pk != first.pk and f'data-item-id="{second.pk}"' in html
    assert Flag.objects.get(pk=first.flag_id).correct_entry_id == entry_id
    assert "(choisir un candidat)" in html  # the undo button names the last decision


def test_second_decision_gets_a_notice_and_the_next_item(client, expert, other_expert):
    _queue(expert, n=3)
    item = workbench.review_item_next(user=expert)
    workbench.review_item_decide(item=item, user=expert, decision="reject")
    client.force_login(other_expert)
    response = client.post(reverse("training:workbench-decide", args=[item.pk]), {"action": "reject"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "déjà été traité par expert" in html
    assert ReviewItem.objects.get(leased_by=other_expert).pk != item.pk


def test_undo_brings_the_item_back_on_screen(expert_client, expert):
    _queue(expert)
    first = workbench.review_item_next(user=expert)
    expert_client.post(reverse("training:workbench-decide", args=[first.pk]), {"action": "reject"}, HTTP_HX_REQUEST="true")
    assert Flag.objects.get(pk=first.flag_id).status == "dismissed"
    html = expert_client.post(reverse("training:workbench-undo"), HTTP_HX_REQUEST="true").content.decode()
    assert "Décision annulée" in html and f'data-item-id="{first.pk}"' in html
    assert Flag.objects.get(pk=first.flag_id).status == "open"
    nothing = expert_client.post(reverse("training:workbench-undo"), HTTP_HX_REQUEST="true").content.decode()
    assert "Aucune décision à annuler" in nothing


def test_without_htmx_a_decision_redirects_with_the_filters(expert_client, expert):
    _queue(expert, domain_names=("Fiscalité", "Budget"))
    page = expert_client.get(reverse("training:workbench"), {"domain": "budget"}).content.decode()
    assert "question Budget" in page and "question Fiscalité" not in page
    item = ReviewItem.objects.get(leased_by=expert)
    response = expert_client.post(reverse("training:workbench-decide", args=[item.pk]), {"action": "reject", "domain": "budget"})
    assert response.status_code == 302 and response["Location"] == reverse("training:workbench") + "?domain=budget"


def test_refresh_button_queues_one_refresh(expert_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = expert_client.post(reverse("training:workbench-refresh"))
    assert response.status_code == 302
    refresh = QueueRefresh.objects.get()
    assert (refresh.trigger, refresh.requested_by.username) == ("request", "expert")


def test_twenty_items_cleared_with_the_keyboard_path(expert_client, expert):
    """Each key press clicks a data-key button: replay twenty such requests, reading the key's button each time."""
    _queue(expert, n=10, domain_names=("Fiscalité", "Budget"))
    html = expert_client.get(reverse("training:workbench")).content.decode()
    started = time.perf_counter()
    for press in range(20):
        key = "1" if press % 2 else "r"
        button = re.search(rf'<button type="submit" name="action" value="([^"]+)" data-key="{key}"', html)
        item_id = re.search(r'data-item-id="(\d+)"', html).group(1)
        html = expert_client.post(reverse("training:workbench-decide", args=[item_id]), {"action": button.group(1)}, HTTP_HX_REQUEST="true").content.decode()
        assert "Décision enregistrée" in html
    assert time.perf_counter() - started < 30
    assert "Rien à examiner" in html
    assert ReviewDecision.objects.filter(user=expert).count() == 20
    assert Flag.objects.filter(correct_entry__isnull=False).count() == 10 and Flag.objects.filter(status="dismissed").count() == 10


# A stand-in for the browser: the panel's controls by data-key, and a keydown dispatcher.
_KEYBOARD_HARNESS = """
const fs = require("fs");
const clicked = [];
const control = (key, extra) => Object.assign({ key, disabled: false, click() { clicked.push(key); } }, extra || {});
const controls = { a: control("a"), r: control("r"), "1": control("1"), u: control("u", { disabled: true }) };
let busy = false;
const panel = { querySelector(selector) {
  if (selector === ".htmx-request") return busy ? {} : null;
  return controls[/data-key="(.*)"/.exec(selector)[1]] || null;
} };
const listeners = {};
global.CSS = { escape: (value) => value };
global.document = {
  addEventListener: (type, listener) => { listeners[type] = listener; },
  getElementById: (id) => (id === "workbench-item" ? panel : null),
  body: { addEventListener() {} },
};
eval(fs.readFileSync(process.argv[2], "utf8"));
const field = { closest: (selector) => (selector.includes("input") ? field : null) };
const press = (key, extra) => listeners.keydown(Object.assign({ key, target: { closest: () => null }, preventDefault() {} }, extra || {}));
press("a"); press("R"); press("1"); press("u"); press("x");
press("r", { ctrlKey: true }); press("r", { target: field });
busy = true; press("a");
console.log(JSON.stringify(clicked));
"""


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_keyboard_shortcuts_click_the_panel_controls(tmp_path):
    """a, r, 1… click their buttons; disabled or missing controls, modifiers, typing and in-flight requests do not."""
    harness = tmp_path / "harness.js"
    harness.write_text(_KEYBOARD_HARNESS)
    script = Path(settings.BASE_DIR) / "static" / "js" / "workbench.js"
    result = subprocess.run(["node", str(harness), str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '["a","r","1"]'


# ---- API --------------------------------------------------------------------------------------------------

def test_api_next_leases_and_lists(api_client, expert, other_expert, reader):
    _queue(expert, domain_names=("Fiscalité", "Budget"))
    api_client.force_authenticate(reader)
    assert api_client.get("/api/review-items").status_code == 200
    denied = api_client.get("/api/review-items/next")
    assert denied.status_code == 403 and denied.json()["reason"]
    api_client.force_authenticate(expert)
    mine = api_client.get("/api/review-items/next", {"domain": "budget", "source": "flag"}).json()
    assert mine["domain"] == "budget" and mine["leased_by"] == "expert" and "choose" in mine["decisions"]
    api_client.force_authenticate(other_expert)
    theirs = api_client.get("/api/review-items/next", {"domain": "budget"}).json()
    assert theirs["id"] != mine["id"]
    assert api_client.get("/api/review-items/next", {"domain": "budget"}).json()["id"] == theirs["id"]
    listing = api_client.get("/api/review-items", {"domain": "fiscalite"}).json()
    assert listing["count"] == 2 and {row["domain"] for row in listing["results"]} == {"fiscalite"}
    assert api_client.get("/api/review-items", {"source": "draft"}).json()["count"] == 0


def test_api_decide_conflict_and_undo(api_client, expert, other_expert):
    _queue(expert, n=1)
    api_client.force_authenticate(expert)
    item = api_client.get("/api/review-items/next").json()
    bad = api_client.post(f"/api/review-items/{item['id']}/decide", {"decision": "same"}, format="json")
    assert bad.status_code == 400 and "ne s'applique pas" in bad.json()["reason"]
    chosen = item["payload"]["candidates"][0]["entry_id"]
    decided = api_client.post(f"/api/review-items/{item['id']}/decide", {"decision": "choose", "candidate": chosen}, format="json")
    assert decided.status_code == 201 and decided.json()["decision"] == "choose" and decided.json()["snapshot"]["key"] == item["key"]
    api_client.force_authenticate(other_expert)
    second = api_client.post(f"/api/review-items/{item['id']}/decide", {"decision": "reject"}, format="json")
    assert second.status_code == 409 and second.json()["code"] == "already_decided" and "expert" in second.json()["reason"]
    assert api_client.get("/api/review-items/next").status_code == 204
    decision_id = decided.json()["id"]
    assert api_client.post(f"/api/review-decisions/{decision_id}/undo").status_code == 403
    api_client.force_authenticate(expert)
    undone = api_client.post(f"/api/review-decisions/{decision_id}/undo")
    assert undone.status_code == 200 and undone.json()["undone_at"]
    assert Flag.objects.get().correct_entry_id is None
    again = api_client.post(f"/api/review-decisions/{decision_id}/undo")
    assert again.status_code == 409 and again.json()["reason"]


def test_api_question_label_through_decide(api_client, expert):
    a, b = EntryFactory(), EntryFactory()
    QuestionLog.objects.create(question="incertaine", hits=[_hit(a, 1), _hit(b, 2)], top_score=0.4, score_margin=0.0)
    workbench.review_items_upsert(source="question", scan=workbench.uncertain_question_items(), version=retrieval_selectors.champion_version_get())
    api_client.force_authenticate(expert)
    item = api_client.get("/api/review-items/next", {"source": "question"}).json()
    assert api_client.post(f"/api/review-items/{item['id']}/decide", {"decision": "choose", "candidate": b.pk}, format="json").status_code == 201
    assert QuestionLabel.objects.get().entry_id == b.pk
