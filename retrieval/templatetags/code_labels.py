"""Human, translated labels for the codes stored in JSON rows (passage types, uncertainty signals, timings):
pages show these, never the codes (issue #17)."""
from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

CODE_LABELS = {
    # Passage types (retrieval.passages).
    "definition": _("définition"),
    "context": _("contexte d'usage"),
    "question": _("question connue"),
    # Why a question is worth an expert's look (training.queue signals).
    "no_answer": _("sans réponse"),
    "small_margin": _("faible écart entre les deux premières entrées"),
    "low_top_score": _("meilleur score faible"),
    "dense_lexical_disagree": _("sens et mots-clés en désaccord"),
    # Durations of a training run's steps, in seconds.
    "build_s": _("préparation des données"),
    "mining_s": _("minage des négatifs"),
    "training_s": _("entraînement"),
    "artifacts_s": _("enregistrement du modèle"),
    "total_s": _("total"),
}


@register.filter
def code_label(code):
    """The label of a known code; an unknown code is shown as it is."""
    return CODE_LABELS.get(code, code) if isinstance(code, str) else code
