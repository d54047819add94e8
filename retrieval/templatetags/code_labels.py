"""Human, translated labels for the codes stored in JSON rows (passage types, uncertainty signals, timings):
pages show these, never the codes (issue #17)."""
from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

CODE_LABELS = {
    # Passage types (retrieval.passages).
    "definition": _("definition"),
    "context": _("usage context"),
    "question": _("known question"),
    # Why a question is worth an expert's look (training.queue signals).
    "no_answer": _("no answer"),
    "small_margin": _("small margin between the first two entries"),
    "low_top_score": _("low best score"),
    "dense_lexical_disagree": _("meaning and keywords disagree"),
    # Durations of a training run's steps, in seconds.
    "llm_questions_s": _("questions written by the LLM"),
    "build_s": _("data preparation"),
    "mining_s": _("negative mining"),
    "training_s": _("training"),
    "artifacts_s": _("saving the model"),
    "total_s": _("total"),
}


@register.filter
def code_label(code):
    """The label of a known code; an unknown code is shown as it is."""
    return CODE_LABELS.get(code, code) if isinstance(code, str) else code
