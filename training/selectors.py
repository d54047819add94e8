"""Reads of the training capability: concepts per split side, flags, screening decisions, runs."""
from __future__ import annotations

from django.db.models import QuerySet

from glossary.models import Entry
from retrieval.models import Flag, LabelledQuestion
from retrieval.question_kinds import is_held_out, normalise_question
from training.builder import ConceptData, FlagData
from training.llm_questions import CachedQuestions
from training.mining import MiningEntry
from training.models import Equivalence, LLMQuestionSet, NegativeCandidate, QuestionLabel, TrainingConfig, TrainingRun


def concept_of(entry: Entry) -> ConceptData:
    return ConceptData(
        entry_id=entry.pk,
        term=entry.term,
        kind=entry.kind,
        definition=entry.definition,
        variants=tuple(entry.variants or ()),
        contexts=tuple(entry.contexts or ()),
        examples=tuple((item.get("question", ""), item.get("answer", "")) for item in entry.examples or ()),
        domain=entry.domain.name if entry.domain_id else None,
    )


def train_side_entries() -> QuerySet[Entry]:
    return Entry.objects.filter(status=Entry.Status.VALIDATED, split=Entry.Split.TRAIN).select_related("domain").order_by("pk")


def test_side_entries() -> QuerySet[Entry]:
    return Entry.objects.filter(status=Entry.Status.VALIDATED, split=Entry.Split.TEST).select_related("domain").order_by("pk")


def test_entry_ids() -> set[int]:
    """Every test-side entry, whatever its status: none of them may ever reach a training set."""
    return set(Entry.objects.filter(split=Entry.Split.TEST).values_list("pk", flat=True))


def train_concepts() -> list[ConceptData]:
    return [concept_of(entry) for entry in train_side_entries()]


def training_flags(*, train_entry_ids: set[int]) -> list[FlagData]:
    """Flags whose corrected entry is on the train side: the logged question -> that entry."""
    flags = (
        Flag.objects.exclude(status=Flag.Status.DISMISSED)
        .filter(correct_entry_id__in=train_entry_ids)
        .select_related("question_log")
        .order_by("pk")
    )
    corrected = [
        FlagData(
            question=flag.question_log.question,
            entry_id=flag.correct_entry_id,
            wrong_entry_ids=tuple(entry_id for entry_id in (flag.wrongly_ranked_entry_ids or []) if entry_id in train_entry_ids),
        )
        for flag in flags
        if flag.question_log.question.strip()
    ]
    return trainable_questions([
        *corrected, *question_label_flags(train_entry_ids=train_entry_ids), *labelled_question_flags(train_entry_ids=train_entry_ids),
    ])


def trainable_questions(items: list[FlagData]) -> list[FlagData]:
    """One pair per (question, entry), first origin kept; held-out questions are never trained on (they judge
    versions: retrieval.question_kinds.is_held_out, the same rule as the labelled questions' held_out field)."""
    seen: set[tuple[str, int]] = set()
    kept = []
    for item in items:
        normalised = normalise_question(item.question)[:500]
        if is_held_out(normalised) or (normalised, item.entry_id) in seen:
            continue
        seen.add((normalised, item.entry_id))
        kept.append(item)
    return kept


def labelled_question_flags(*, train_entry_ids: set[int]) -> list[FlagData]:
    """The installation's labelled questions (accepted answers, exam questions, imports...) not held out."""
    rows = LabelledQuestion.objects.filter(held_out=False, entry_id__in=train_entry_ids).order_by("pk")
    return [
        FlagData(
            question=row.text, entry_id=row.entry_id,
            wrong_entry_ids=tuple(entry_id for entry_id in row.wrong_entry_ids or [] if entry_id in train_entry_ids),
        )
        for row in rows
    ]


def question_label_flags(*, train_entry_ids: set[int]) -> list[FlagData]:
    """Question -> entry pairs experts confirmed in the workbench, on train-side entries, as the builder's flags."""
    labels = QuestionLabel.objects.filter(entry_id__in=train_entry_ids).order_by("pk")
    return [
        FlagData(
            question=label.question,
            entry_id=label.entry_id,
            wrong_entry_ids=tuple(entry_id for entry_id in label.wrong_entry_ids or [] if entry_id in train_entry_ids),
        )
        for label in labels
        if label.question.strip()
    ]


def mining_entries(*, entry_ids: set[int]) -> dict[int, MiningEntry]:
    rows = Entry.objects.filter(pk__in=entry_ids).values_list("pk", "term", "kind", "variants")
    return {pk: MiningEntry(entry_id=pk, term=term, kind=kind, variants=tuple(variants or ())) for pk, term, kind, variants in rows}


def equivalent_pairs() -> set[frozenset[int]]:
    return {frozenset((a, b)) for a, b in Equivalence.objects.values_list("entry_a_id", "entry_b_id")}


def screening_decisions() -> dict[tuple[int, int], str]:
    decided = NegativeCandidate.objects.exclude(decision=NegativeCandidate.Decision.PENDING)
    return {(a, b): decision for a, b, decision in decided.values_list("anchor_entry_id", "negative_entry_id", "decision")}


def screening_queue(*, domain: str | None = None) -> QuerySet[NegativeCandidate]:
    """Mined negatives waiting for an expert; those of a cancelled run are never offered (the run taught nothing)."""
    qs = (
        NegativeCandidate.objects.filter(decision=NegativeCandidate.Decision.PENDING)
        .exclude(run__job__status=TrainingRun.Status.CANCELLED)
        .select_related("anchor_entry", "negative_entry", "anchor_entry__domain")
    )
    if domain:
        qs = qs.filter(anchor_entry__domain__slug=domain)
    return qs.order_by("-score", "pk")


def active_run_get() -> TrainingRun | None:
    """The cycle in progress: its training job, or its evaluation or gate, holds the cycle's lock."""
    from jobs.models import Job
    from training.pipeline import CYCLE_LOCK

    holder = Job.objects.filter(lock=CYCLE_LOCK).first()
    if holder is None:
        return None
    while holder.parent_id and holder.kind != "training":
        holder = holder.parent
    return TrainingRun.objects.filter(job=holder).select_related("job").first()


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("job", "job__requested_by", "config", "model_version", "snapshot").order_by("-created_at")


def training_run_get(*, run_id: int) -> TrainingRun:
    return training_run_list().get(pk=run_id)


def last_finished_run() -> TrainingRun | None:
    return TrainingRun.objects.filter(job__status="succeeded").select_related("job").order_by("-job__started_at").first()


def new_material_count() -> dict[str, int]:
    """What the experts contributed since the last successful training run started."""
    last = last_finished_run()
    since = last.started_at if last else None
    entries = Entry.objects.filter(status=Entry.Status.VALIDATED)
    flags = Flag.objects.exclude(status=Flag.Status.DISMISSED).filter(correct_entry__isnull=False)
    screened = NegativeCandidate.objects.exclude(decision=NegativeCandidate.Decision.PENDING)
    labels = QuestionLabel.objects.all()
    if since:
        entries = entries.filter(updated_at__gt=since)
        flags = flags.filter(created_at__gt=since)
        screened = screened.filter(decided_at__gt=since)
        labels = labels.filter(created_at__gt=since)
    counts = {"entries": entries.count(), "flags": flags.count(), "screened": screened.count(), "labels": labels.count()}
    counts["total"] = sum(counts.values())
    return counts


def training_config_list() -> QuerySet[TrainingConfig]:
    return TrainingConfig.objects.all()


def training_config_default() -> TrainingConfig:
    """The default training config; before one is recorded (training.services.training_config_default_get, on the
    first training request or settings page), an unsaved config with the defaults it will be created with."""
    return TrainingConfig.objects.filter(is_default=True).first() or TrainingConfig(is_default=True)


def unassigned_or_all_entries_for_split() -> QuerySet[Entry]:
    return Entry.objects.select_related("domain").only("pk", "term_key", "definition_key_hash", "kind", "split", "domain__name")




def labelled_questions_trained(*, pairs: list[tuple[str, int]]) -> list[int]:
    """The labelled questions (not held out) that these expert (question, entry) training pairs came from."""
    wanted = {(normalise_question(question)[:500], entry_id) for question, entry_id in pairs}
    if not wanted:
        return []
    rows = LabelledQuestion.objects.filter(held_out=False, entry_id__in={entry_id for _question, entry_id in wanted})
    return sorted(row.pk for row in rows.only("pk", "normalised", "entry_id") if (row.normalised[:500], row.entry_id) in wanted)


def held_out_question_keys() -> set[str]:
    """The normalised text of every held-out labelled question: never trained on, whatever wrote it."""
    return set(LabelledQuestion.objects.filter(held_out=True).values_list("normalised", flat=True))


def llm_question_cache() -> dict[int, CachedQuestions]:
    """The LLM questions kept for train-side entries, by entry id (training.llm_questions)."""
    rows = LLMQuestionSet.objects.filter(entry__split=Entry.Split.TRAIN).only("entry_id", "key", "questions")
    return {row.entry_id: CachedQuestions(key=row.key, questions=tuple(row.questions or ())) for row in rows}


def held_out_questions() -> list[tuple[str, int]]:
    """The held-out labelled questions on validated entries, as (question, entry id): what chooses the adapter weight."""
    rows = LabelledQuestion.objects.filter(held_out=True, entry__status=Entry.Status.VALIDATED).order_by("pk")
    return [(row.text, row.entry_id) for row in rows.only("text", "entry_id")]
