"""The whole loop in a real browser: an expert curates, asks, flags and reviews with the keyboard; a maintainer
retrains, watches the run live, reads the evaluation and the gate's decision, and rolls back.

One test, because each step feeds the next (the flag goes into the review queue, the decisions into the
training data, the trained version onto the versions page). It drives headless Chromium against the live
server, with a real Celery worker process doing the background work, and checks both what the user sees
and what the database holds.
"""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from glossary.models import Entry
from retrieval import selectors as retrieval_selectors
from retrieval import indexing as retrieval_indexing
from retrieval.models import Flag, ModelVersion, PromotionEvent, QuestionLog
from tests.browser.conftest import log_in, log_out, save_screenshot
from tests.factories import DomainFactory, EntryFactory
from tests.live import wait_for
from training import services as training_services
from training.models import QueueRefresh, ReviewDecision, ReviewItem, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

# (term, domain, definition, usage context, split): twelve validated entries, two meanings of ARS among them.
VALIDATED = [
    ("URSSAF", "Social", "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales, "
     "l'organisme qui collecte les cotisations sociales des entreprises.", "L'URSSAF a envoyé l'appel de cotisations.", "test"),
    ("CAF", "Social", "Caisse d'allocations familiales, qui verse les prestations familiales et les aides au logement.",
     "La CAF a recalculé l'aide au logement.", "train"),
    ("ARS", "Santé", "Agence régionale de santé, qui pilote la politique de santé publique dans la région.",
     "L'ARS a autorisé l'ouverture du centre de vaccination.", "test"),
    ("ARS", "Social", "Allocation de rentrée scolaire, versée aux familles pour les dépenses de la rentrée des enfants.",
     "L'ARS est versée en août aux familles éligibles.", "train"),
    ("RSA", "Social", "Revenu de solidarité active, qui assure un revenu minimum aux personnes sans ressources.",
     "Il touche le RSA depuis la fin de ses droits au chômage.", "train"),
    ("CPAM", "Santé", "Caisse primaire d'assurance maladie, qui rembourse les soins des assurés sociaux.",
     "La CPAM rembourse la consultation sous cinq jours.", "train"),
    ("TVA", "Fiscalité", "Taxe sur la valeur ajoutée, impôt sur la consommation payé par le client final.",
     "La TVA est reversée à l'État chaque mois.", "test"),
    ("IR", "Fiscalité", "Impôt sur le revenu, prélevé sur les revenus des personnes physiques.",
     "L'IR est prélevé à la source sur le salaire.", "test"),
    ("DGFiP", "Fiscalité", "Direction générale des finances publiques, chargée de l'impôt et de la comptabilité publique.",
     "La DGFiP publie les statistiques fiscales.", "train"),
    ("Crédit budgétaire", "Budget", "Montant maximal de dépenses autorisé par la loi de finances.",
     "Le crédit budgétaire du programme est épuisé.", "test"),
    ("Titre de perception", "Budget", "Document par lequel l'administration réclame une somme due.",
     "Un titre de perception a été émis contre la société.", "train"),
    ("Dotation", "Budget", "Somme attribuée par l'État à une collectivité territoriale.",
     "La dotation de la commune baisse cette année.", "train"),
]
# Drafts: the expert completes and validates the first in the entry form; the others wait in the workbench.
DRAFTS = [
    ("PLF", "Budget", "Projet de loi de finances."),
    ("CSG", "Fiscalité", "Contribution sociale généralisée, prélevée sur les revenus pour financer la protection sociale."),
    ("DDFiP", "Fiscalité", "Direction départementale des finances publiques."),
]
PLF_DEFINITION = "Projet de loi de finances, déposé chaque automne au Parlement pour fixer le budget de l'État."
KEY_DECISIONS = {"a": "accept", "r": "reject", "m": "same", "s": "skip"}
FINISHED_RUN = {TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED}


def build_glossary() -> dict[str, Entry]:
    entries = {}
    for term, domain, definition, context, split in VALIDATED:
        key = f"{term} ({domain})" if term == "ARS" else term
        entries[key] = EntryFactory(
            term=term, domain=DomainFactory(name=domain), definition=definition, contexts=[context], split=split,
            split_pinned=True, kind=Entry.Kind.TERM if " " in term else Entry.Kind.ACRONYM,
        )
    for term, domain, definition in DRAFTS:
        entries[term] = EntryFactory(
            term=term, domain=DomainFactory(name=domain), definition=definition, contexts=[], status=Entry.Status.DRAFT,
            split="train", split_pinned=True,
        )
    return entries


def tiny_training_config() -> None:
    """The retrain button uses the default configuration: two LoRA steps over batches of eight."""
    config = training_services.training_config_default_get()
    config.max_steps = 2
    config.batch_size = 8
    config.save()


def ask(page: Page, question: str) -> None:
    """Ask on the assistant page and wait for this question's answer (an earlier one may still be on screen)."""
    page.get_by_label("Votre question").fill(question)
    with page.expect_response(lambda response: response.url.endswith("/ask/") and response.request.method == "POST"):
        page.get_by_role("button", name="Demander").click()
    expect(page.locator("#answer-area .answer")).to_be_visible()


# ---- the expert's part --------------------------------------------------------------------------------------

def expert_edits_and_validates_a_draft(page: Page, plf: Entry) -> None:
    expect(page.get_by_role("heading", name="Glossaire", exact=True)).to_be_visible()
    expect(page.locator("#entry-results")).to_contain_text("15 entrées trouvées")
    save_screenshot(page, "01-glossary-list")

    # The search box filters the list in place (htmx), then the entry opens from its row.
    page.get_by_label("Rechercher").fill("PLF")
    expect(page.locator("#entry-results")).to_contain_text("1 entrée trouvée")
    page.locator("#entry-results").get_by_role("link", name="PLF", exact=True).click()
    page.wait_for_url(f"**/glossary/entries/{plf.pk}/")

    page.get_by_role("link", name="Modifier").click()
    page.get_by_label("Définition").fill(PLF_DEFINITION)
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(f"**/glossary/entries/{plf.pk}/")
    expect(page.locator(".messages")).to_contain_text("Entrée « PLF » enregistrée.")
    expect(page.locator("dl.fields").first).to_contain_text("déposé chaque automne")

    status = page.locator("#entry-status")
    expect(status.locator(".badge")).to_have_text("brouillon")
    status.get_by_role("button", name="Valider").click()
    expect(status.locator(".badge")).to_have_text("validé")
    # Swapped in place: the page kept its flash message, so it was not reloaded.
    expect(page.locator(".messages")).to_contain_text("Entrée « PLF » enregistrée.")
    save_screenshot(page, "02-entry-detail")

    plf.refresh_from_db()
    assert plf.status == Entry.Status.VALIDATED
    assert plf.definition == PLF_DEFINITION
    assert plf.history.filter(history_user__username="expert").count() == 2  # the edit, then the validation


def expert_asks_and_flags(page: Page, entries: dict[str, Entry]) -> Flag:
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Assistant").click()
    ask(page, "c'est quoi l'ursaf ?")
    answer = page.locator("#answer-area .answer")
    expect(answer.locator("ol.sources")).to_be_visible()
    expect(answer.locator("ol.sources").get_by_role("link", name="URSSAF")).to_be_visible()
    urssaf_log = QuestionLog.objects.get(question="c'est quoi l'ursaf ?")
    assert urssaf_log.user.username == "expert"
    assert entries["URSSAF"].pk in [source["entry_id"] for source in urssaf_log.sources]

    # An ambiguous acronym: the answer gives one meaning of ARS, the expert meant the other one and finds it
    # with the search box of the flag form.
    ask(page, "c'est quoi l'ARS ?")
    log = QuestionLog.objects.get(question="c'est quoi l'ARS ?")
    agency, allowance = entries["ARS (Santé)"], entries["ARS (Social)"]
    answered = log.hits[0]["entry_id"]
    assert answered in (agency.pk, allowance.pk), log.hits
    meant, search_text = (agency, "santé publique") if answered == allowance.pk else (allowance, "rentrée scolaire")
    flags_area = page.locator(f"#flags-area-{log.pk}")
    flags_area.get_by_label("Motif").select_option("wrong_entry")
    flags_area.get_by_label("Ou cherchez-la dans le glossaire").fill(search_text)
    suggestion = flags_area.locator(f"#entry-suggestions-{log.pk} input[value='{meant.pk}']")
    expect(suggestion).to_be_visible()
    suggestion.check()
    flags_area.get_by_label("Commentaire").fill("Je parlais de l'autre ARS.")
    flags_area.get_by_role("button", name="Envoyer le signalement").click()
    expect(flags_area).to_contain_text("Merci : le signalement est enregistré.")
    expect(flags_area.locator("ul.flag-list")).to_contain_text("bonne entrée : ARS")

    flag = Flag.objects.get(question_log=log)
    assert (flag.created_by.username, flag.reason, flag.correct_entry_id, flag.status) == ("expert", "wrong_entry", meant.pk, "corrected")
    assert flag.comment == "Je parlais de l'autre ARS."
    assert answered in flag.wrongly_ranked_entry_ids

    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Signalements").click()
    row = page.locator(f"#flag-row-{flag.pk}")
    expect(row).to_contain_text("c'est quoi l'ARS ?")
    expect(row).to_contain_text("mauvaise entrée retrouvée")
    first_retrieved, correct = row.locator("td").nth(3).get_by_role("link"), row.locator("td").nth(4).get_by_role("link")
    expect(first_retrieved).to_have_attribute("href", f"/glossary/entries/{answered}/")
    expect(correct).to_have_attribute("href", f"/glossary/entries/{meant.pk}/")
    expect(correct).to_have_text("ARS")
    save_screenshot(page, "03-flag-list")
    return flag


def press_and_wait_for_next_item(page: Page, key: str, item_id: str) -> None:
    page.keyboard.press(key)
    expect(page.locator("#workbench-item")).not_to_have_attribute("data-item-id", item_id)
    expect(page.locator("#workbench-item .notice")).to_contain_text("Décision enregistrée")
    # htmx binds the new panel's forms when the swap settles (20 ms later, longer on a busy machine): a key pressed
    # before would submit the form without htmx (a whole page). Wait for it even when no item is left to focus.
    expect(page.locator("#workbench-item")).not_to_have_class(re.compile(r"\bhtmx-settling\b"))
    if page.locator("#workbench-item[data-item-id]").count():
        # Once the swap has settled, the focus moves to the new item's heading (for screen readers).
        expect(page.locator("#item-title")).to_be_focused()


def expert_reviews_with_the_keyboard(page: Page) -> None:
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Atelier d'annotation").click()
    expect(page.get_by_role("heading", name="Atelier d'annotation")).to_be_visible()
    page.get_by_role("button", name="Recalculer la file").click()
    refresh = wait_for(
        lambda: QueueRefresh.objects.filter(job__status__in=["succeeded", "failed"]).first(),
        timeout=180, message="the worker to refresh the review queue",
    )
    assert refresh.status == "succeeded", refresh.error
    assert ReviewItem.objects.filter(status="open").count() >= 3
    page.reload()

    panel = page.locator("#workbench-item")
    decided = []
    # Whatever the queue's order, each item offers one of these; "s" (skip) is offered everywhere.
    preferences = (("a", "r"), ("r", "m", "1"), ("s",))
    for wanted in preferences:
        expect(panel).to_have_attribute("data-item-id", re.compile(r"^\d+$"))
        item_id = panel.get_attribute("data-item-id")
        offered = panel.locator("[data-key]").evaluate_all("controls => controls.filter(c => !c.disabled).map(c => c.dataset.key)")
        key = next(key for key in wanted if key in offered)
        press_and_wait_for_next_item(page, key, item_id)
        decided.append((int(item_id), key))

    for item_id, key in decided:
        decision = ReviewDecision.objects.get(item_id=item_id, user__username="expert")
        assert decision.decision == KEY_DECISIONS.get(key, "choose")
        assert decision.undone_at is None
    assert ReviewItem.objects.filter(pk__in=[item_id for item_id, key in decided if key != "s"], status="done").count() == 2

    # "u" undoes the last decision (the skip) and brings its item back on screen.
    skipped_id = decided[-1][0]
    page.keyboard.press("u")
    expect(panel.locator(".notice")).to_contain_text("Décision annulée")
    expect(panel).to_have_attribute("data-item-id", str(skipped_id))
    assert ReviewDecision.objects.get(item_id=skipped_id).undone_at is not None
    save_screenshot(page, "04-workbench")


# ---- the maintainer's part ----------------------------------------------------------------------------------

def maintainer_sees_the_debug_panel(page: Page) -> None:
    page.goto("/ask/")
    ask(page, "c'est quoi l'ursaf ?")
    debug = page.locator("#answer-area details.debug")
    debug.locator("summary").click()
    expect(debug.get_by_text("Requête finale")).to_be_visible()
    expect(debug.locator("table")).to_contain_text("URSSAF")
    save_screenshot(page, "05-ask-answer-debug")


def maintainer_retrains_and_watches(page: Page) -> TrainingRun:
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Entraînement").click()
    page.locator("#retrain-button").click()
    page.wait_for_url(re.compile(r".*/training/runs/\d+/$"))
    run_id = int(re.search(r"/training/runs/(\d+)/", page.url).group(1))
    expect(page.locator(".messages")).to_contain_text(f"Entraînement n° {run_id} demandé.")
    # Anything set on the window survives htmx swaps and is lost on a reload.
    page.evaluate("window.sameDocument = true")

    seen_statuses: list[str] = []
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        status = page.locator("#run-status").get_attribute("data-status")
        if not seen_statuses or seen_statuses[-1] != status:
            seen_statuses.append(status)
        if status in FINISHED_RUN:
            break
        page.wait_for_timeout(500)
    run = TrainingRun.objects.get(pk=run_id)
    assert seen_statuses[-1] == "succeeded", f"{seen_statuses}\n{run.log}\n{run.error}"
    # The page followed the run through at least one working stage to its end, by htmx polling alone.
    assert seen_statuses[0] in TrainingRun.ACTIVE and len(seen_statuses) >= 2, seen_statuses
    assert page.evaluate("window.sameDocument") is True
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "2")
    expect(page.locator("#run-progress")).to_contain_text("Étape 2 / 2")
    expect(page.locator("#run-version")).to_have_text(run.model_version.display_name)
    expect(page.locator("#run-log")).to_contain_text("sera promue")
    # Finished: the fragment no longer polls.
    assert page.locator("#run-progress").get_attribute("hx-trigger") is None
    save_screenshot(page, "06-training-run")

    assert run.requested_by.username == "maintainer" and run.trigger == "button"
    assert run.config_values["max_steps"] == 2 and run.config_values["batch_size"] == 8
    assert run.model_version.parent.number == 0 and run.model_version.training_run_id == run.pk
    return run


def maintainer_reads_the_evaluation(page: Page, version: ModelVersion) -> None:
    # The gate promoted the version; the switch happens once the worker has built its index.
    wait_for(
        lambda: ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.CHAMPION).exists(),
        timeout=180, message=f"{version} to become the champion",
    )
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Versions").click()
    row = page.locator(f"#version-{version.pk}")
    expect(row.locator(".badge.champion")).to_have_text("championne")
    row.locator("details summary", has_text="promouvoir").click()
    expect(row.locator("details ul")).to_contain_text("Le candidat fait mieux")
    base = retrieval_selectors.model_version_get(ref="base")
    expect(page.locator(f"#version-{base.pk}")).to_contain_text("archivée")
    save_screenshot(page, "07-versions")

    row.get_by_role("link", name=version.display_name).click()
    page.wait_for_url(f"**/versions/{version.pk}/report/")
    expect(page.get_by_role("heading", name=f"Rapport d'évaluation de {version.display_name}")).to_be_visible()
    expect(page.locator("#gate h2")).to_contain_text("promouvoir")
    expect(page.locator("figure.chart svg").first).to_be_visible()
    assert page.locator("figure.chart svg").count() >= 2
    save_screenshot(page, "08-report")

    version.refresh_from_db()
    assert version.metrics["gate"]["decision"] == "promote"
    event = PromotionEvent.objects.get(version=version)
    assert (event.action, event.previous_champion_id) == (PromotionEvent.Action.AUTO, base.pk)


def maintainer_rolls_back(page: Page, version: ModelVersion) -> None:
    base = retrieval_selectors.model_version_get(ref="base")
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Versions").click()
    page.locator("#rollback-button").click()  # first click
    page.wait_for_url("**/versions/rollback/")
    page.get_by_label("Raison (journal d'audit)").fill("Essai de bout en bout : retour à la version de base.")
    page.locator("#rollback-confirm").click()  # second click
    page.wait_for_url("**/versions/")
    expect(page.locator(".messages")).to_contain_text("Retour à base demandé")

    event = wait_for(
        lambda: PromotionEvent.objects.filter(action=PromotionEvent.Action.ROLLBACK).first(),
        timeout=180, message="the worker to restore the previous champion",
    )
    assert (event.version_id, event.previous_champion_id, event.user.username) == (base.pk, version.pk, "maintainer")
    assert event.reason == "Essai de bout en bout : retour à la version de base."
    assert retrieval_selectors.champion_version_get() == base
    page.reload()
    expect(page.locator(f"#version-{base.pk} .badge.champion")).to_have_text("championne")
    expect(page.locator(f"#version-{version.pk}")).to_contain_text("archivée")


@pytest.mark.django_db(transaction=True)
def test_the_whole_loop_in_a_browser(page: Page, gate_promoting_worker, expert, maintainer):
    entries = build_glossary()
    tiny_training_config()
    # The serving index exists before the first question, as after `manage.py build_index`.
    retrieval_indexing.index_rebuild(version=retrieval_selectors.champion_version_get())

    log_in(page, username="expert", password="pw-expert")
    expert_edits_and_validates_a_draft(page, entries["PLF"])
    expert_asks_and_flags(page, entries)
    expert_reviews_with_the_keyboard(page)
    log_out(page)

    log_in(page, username="maintainer", password="pw-maintainer")
    maintainer_sees_the_debug_panel(page)
    run = maintainer_retrains_and_watches(page)
    maintainer_reads_the_evaluation(page, run.model_version)
    maintainer_rolls_back(page, run.model_version)
