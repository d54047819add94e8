"""The workbench on first use and after imports: the queue is computed without a click, the page says so while
it is, the counters agree with the empty state, a flag's correction shows its entry, and an inapplicable key
says why it did nothing."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import escape

from config.roles import EXPERT, assign_role
from glossary import services as glossary_services
from glossary.models import Entry
from retrieval import selectors as retrieval_selectors
from retrieval import serving
from retrieval.models import Flag, QuestionLog
from jobs.models import Job
from training import workbench
from training.models import QueueRefresh, ReviewItem
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


def _flags(expert, n, *, domain_name="Fiscalité", correct=False):
    domain = DomainFactory(name=domain_name)
    entries = [EntryFactory(domain=domain) for _ in range(3)]
    for i in range(n):
        log = QuestionLog.objects.create(question=f"question {domain_name} {i}", hits=[_hit(entry, rank) for rank, entry in enumerate(entries, start=1)])
        Flag.objects.create(
            question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits, domain=domain,
            correct_entry=entries[2] if correct else None,
        )
    workbench.review_items_upsert(source=ReviewItem.Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()
    QueueRefresh.objects.create(job=Job.objects.create(kind="queue_refresh", status=QueueRefresh.Status.SUCCEEDED))  # the queue has been computed
    return entries


def _open_count(html):
    import re

    return int(re.search(r'<dd id="wb-open">(\d+)</dd>', html).group(1))


# ---- first use ----------------------------------------------------------------------------------------------

def test_first_visit_computes_the_queue_and_polls_instead_of_showing_an_empty_state(expert_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        page = expert_client.get(reverse("training:workbench")).content.decode()
    refresh = QueueRefresh.objects.get()
    assert (refresh.trigger, refresh.status, refresh.requested_by.username, len(callbacks)) == ("first_use", "queued", "expert", 1)
    assert "Calcul de la file en cours" in page and "Rien à examiner" not in page
    assert 'hx-trigger="every 2s"' in page and reverse("training:workbench-next") in page
    # Polling (and a second visit) while it runs: still computing, and no second refresh.
    polled = expert_client.get(reverse("training:workbench-next"), HTTP_HX_REQUEST="true").content.decode()
    assert "Calcul de la file en cours" in polled and 'hx-trigger="every 2s"' in polled
    expert_client.get(reverse("training:workbench"))
    assert QueueRefresh.objects.count() == 1
    # Done: the poll gets the empty state, which stops the polling.
    Job.objects.filter(pk=refresh.job_id).update(status=QueueRefresh.Status.SUCCEEDED, lock=None)
    done = expert_client.get(reverse("training:workbench-next"), HTTP_HX_REQUEST="true").content.decode()
    assert "Rien à examiner" in done and "every 2s" not in done


def test_a_computed_queue_is_not_recomputed_on_each_visit(expert_client, expert):
    _flags(expert, 1)
    expert_client.get(reverse("training:workbench"))
    assert QueueRefresh.objects.count() == 1


def test_an_import_requests_a_refresh_that_puts_its_drafts_in_the_queue(expert, django_capture_on_commit_callbacks):
    domain = DomainFactory(name="Budget")
    EntryFactory(term="LOLF", definition="Loi organique relative aux lois de finances.", domain=domain)
    serving.forget_indexes()
    with django_capture_on_commit_callbacks(execute=True):
        entry = glossary_services.entry_build(term="PLF", definition="Projet de loi de finances.", domain=domain, status=Entry.Status.DRAFT, created_by=expert)
        glossary_services.entries_bulk_create(entries=[entry], user=expert, change_reason="import")
    serving.forget_indexes()
    refresh = QueueRefresh.objects.get()
    assert (refresh.trigger, refresh.status) == ("import", "succeeded"), refresh.error
    assert ReviewItem.objects.filter(source="draft", entry__term="PLF", status="open").exists()


# ---- counters and the empty state agree ---------------------------------------------------------------------

def test_counters_count_what_this_expert_can_be_served(expert_client, expert, other_expert):
    _flags(expert, 2)
    _flags(expert, 1, domain_name="Budget")
    held_by_other = workbench.review_item_next(user=other_expert, domain="fiscalite")
    mine = workbench.review_item_next(user=expert, domain="fiscalite")
    workbench.review_item_decide(item=mine, user=expert, decision="skip")
    # Fiscalité: one item held by the other expert, one skipped by this one: nothing left for them.
    html = expert_client.get(reverse("training:workbench"), {"domain": "fiscalite"}).content.decode()
    assert "Rien à examiner" in html and _open_count(html) == 0
    assert "pris par d'autres experts ou passés" in html
    # Without the filter the Budget item is served, and counted.
    html = expert_client.get(reverse("training:workbench")).content.decode()
    assert "Rien à examiner" not in html and _open_count(html) == 1
    assert workbench.workbench_counters()["open"] == 3  # without a user: every open item, as before
    assert held_by_other.leased_by_id == other_expert.pk


# ---- what the item shows ------------------------------------------------------------------------------------

def test_confirming_a_flag_correction_shows_the_entry_being_confirmed(expert_client, expert):
    entries = _flags(expert, 1, correct=True)
    correct = entries[2]
    html = expert_client.get(reverse("training:workbench")).content.decode()
    assert 'id="confirming-entry"' in html
    box = html[html.index('id="confirming-entry"'):]
    box = box[: box.index("</div>")]
    assert correct.term in box and escape(correct.definition) in box and "Fiscalité" in box
    assert f"Confirmer la correction : {correct.term}" in html


def test_a_flag_without_correction_shows_no_confirmation(expert_client, expert):
    _flags(expert, 1)
    assert 'id="confirming-entry"' not in expert_client.get(reverse("training:workbench")).content.decode()


def test_the_page_carries_the_message_for_keys_that_do_not_apply(expert_client, expert):
    _flags(expert, 1)
    html = expert_client.get(reverse("training:workbench")).content.decode()
    assert 'id="workbench-key-hint"' in html and "ne s’applique pas à cet élément" in html


_HINT_HARNESS = """
const fs = require("fs");
const clicked = [];
const control = (key, extra) => Object.assign({ key, disabled: false, dataset: { key }, click() { clicked.push(key); } }, extra || {});
const controls = { a: control("a"), r: control("r"), "1": control("1"), s: control("s"), u: control("u", { disabled: true }) };
const panel = {
  querySelector(selector) { return selector === ".htmx-request" ? null : controls[/data-key="(.*)"/.exec(selector)[1]] || null; },
  querySelectorAll() { return ["a", "r", "1", "s", "u"].map((key) => controls[key]); },
};
const hint = { textContent: "", hidden: true, dataset: { message: "La touche « {key} » ne s’applique pas à cet élément.", offered: "Touches possibles : {keys}." } };
const listeners = {};
global.CSS = { escape: (value) => value };
global.document = {
  addEventListener: (type, listener) => { listeners[type] = listener; },
  getElementById: (id) => ({ "workbench-item": panel, "workbench-key-hint": hint })[id] || null,
  body: { addEventListener() {} },
};
eval(fs.readFileSync(process.argv[2], "utf8"));
const press = (key) => listeners.keydown({ key, target: { closest: () => null }, preventDefault() {} });
const seen = [];
press("m"); seen.push([hint.hidden, hint.textContent]);
press("a"); seen.push([hint.hidden, hint.textContent]);
press("x"); seen.push([hint.hidden, hint.textContent]);
console.log(JSON.stringify({ clicked, seen }));
"""


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_a_key_that_does_not_apply_says_so(tmp_path):
    harness = tmp_path / "harness.js"
    harness.write_text(_HINT_HARNESS)
    script = Path(settings.BASE_DIR) / "static" / "js" / "workbench.js"
    result = subprocess.run(["node", str(harness), str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["clicked"] == ["a"]
    assert out["seen"][0] == [False, "La touche « m » ne s’applique pas à cet élément. Touches possibles : a, r, 1, s."]
    assert out["seen"][1] == [True, ""]  # a key that applies clears the message
    assert out["seen"][2] == [True, ""]  # not a shortcut: nothing said
