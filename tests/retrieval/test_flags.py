"""Flags on bad answers: what they record for training, and how they are listed."""
import pytest
from django.core.exceptions import ValidationError

from glossary.models import Entry
from retrieval import flags, selectors, versions
from retrieval.models import Flag, QuestionLog
from tests.factories import DomainFactory


def _logged_question(*entry_ids: int, version=None) -> QuestionLog:
    """A question log whose hits are these entries, in this order (no model needed)."""
    hits = [{"entry_id": entry_id, "term": f"term {entry_id}", "rank": rank} for rank, entry_id in enumerate(entry_ids, start=1)]
    return QuestionLog.objects.create(question="c'est quoi ?", hits=hits, version=version or selectors.champion_version_get())


def test_flag_records_the_entries_ranked_above_the_correct_one(glossary, expert):
    caf, tva, urssaf = glossary["caf"], glossary["tva"], glossary["urssaf"]
    log = _logged_question(caf.pk, tva.pk, urssaf.pk)
    flag = flags.flag_create(question_log=log, user=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=urssaf, comment=" rang 3 ")
    assert flag.wrongly_ranked_entry_ids == [caf.pk, tva.pk]
    assert flag.retrieved == log.hits and flag.version == log.version
    assert flag.domain == urssaf.domain and flag.comment == "rang 3" and flag.status == Flag.Status.CORRECTED and flag.corrected_at is not None


def test_flag_with_a_correct_entry_that_was_not_retrieved(glossary, expert):
    log = _logged_question(glossary["caf"].pk, glossary["tva"].pk)
    flag = flags.flag_create(question_log=log, user=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=glossary["rescrit"])
    assert flag.wrongly_ranked_entry_ids == [glossary["caf"].pk, glossary["tva"].pk]


def test_flag_creates_the_missing_entry_in_place(glossary, expert):
    log = _logged_question(glossary["caf"].pk)
    domain = DomainFactory(name="Santé")
    flag = flags.flag_create(
        question_log=log,
        user=expert,
        reason=Flag.Reason.MISSING_ENTRY,
        new_entry={"term": "ARS", "definition": "Agence régionale de santé, qui pilote la politique de santé en région.", "kind": "acronym", "domain": domain},
    )
    entry = flag.correct_entry
    assert (entry.term, entry.status, entry.created_by, entry.domain) == ("ARS", Entry.Status.DRAFT, expert, domain)
    assert flag.wrongly_ranked_entry_ids == [glossary["caf"].pk] and flag.domain == domain


def test_flag_without_a_correct_entry_takes_the_domain_of_the_top_hit(glossary, expert):
    log = _logged_question(glossary["tva"].pk)
    flag = flags.flag_create(question_log=log, user=expert, reason=Flag.Reason.BAD_WORDING)
    assert flag.wrongly_ranked_entry_ids == [] and flag.domain == glossary["tva"].domain


def test_flag_refuses_bad_input(glossary, expert):
    log = _logged_question(glossary["caf"].pk)
    with pytest.raises(ValidationError):
        flags.flag_create(question_log=log, user=expert, reason="because")
    with pytest.raises(ValidationError):
        flags.flag_create(
            question_log=log, user=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=glossary["tva"], new_entry={"term": "X", "definition": "Y"}
        )
    with pytest.raises(ValidationError):  # the glossary's own rules apply to an entry created in place
        flags.flag_create(question_log=log, user=expert, reason=Flag.Reason.MISSING_ENTRY, new_entry={"term": "", "definition": "sans terme"})
    assert not Flag.objects.exists()


def test_flag_status_and_filters(glossary, expert):
    other_version = versions.model_version_create(base_model=selectors.champion_version_get().base_model)
    social = flags.flag_create(question_log=_logged_question(glossary["caf"].pk), user=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=glossary["urssaf"])
    fiscal = flags.flag_create(question_log=_logged_question(glossary["tva"].pk, version=other_version), user=expert, reason=Flag.Reason.WRONG_DEFINITION)
    flags.flag_set_status(flag=fiscal, status=Flag.Status.DISMISSED, user=expert)
    fiscal.refresh_from_db()
    assert fiscal.status_changed_by == expert and fiscal.status_changed_at is not None
    with pytest.raises(ValidationError):
        flags.flag_set_status(flag=fiscal, status="closed", user=expert)

    assert list(selectors.flag_list(status=Flag.Status.CORRECTED)) == [social]
    assert list(selectors.flag_list(status=Flag.Status.DISMISSED)) == [fiscal]
    assert list(selectors.flag_list(domain=glossary["tva"].domain.pk)) == [fiscal]
    assert list(selectors.flag_list(domain=glossary["caf"].domain.slug)) == [social]
    assert list(selectors.flag_list(version=other_version)) == [fiscal]
    assert list(selectors.flag_list()) == [fiscal, social]
