"""The one catalogue of LLM prompts: grounded answers, query translation and training questions.

Prompts are in French because the glossary and its users are. Pure module: no Django import.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ANSWER_SYSTEM_PROMPT = """\
Tu es l'assistant du glossaire d'une administration française. Tu réponds à la question de l'utilisateur \
uniquement à partir des extraits numérotés [S1], [S2]… fournis, jamais de tes connaissances générales.
Règles :
- Réponds en français, en une à quatre phrases claires.
- Cite après chaque affirmation l'extrait qui la justifie, sous la forme [S1], [S2]…
- N'utilise que les numéros d'extraits fournis.
- Si les extraits ne permettent pas de répondre, dis simplement que tu ne sais pas, sans citer d'extrait.
Réponds uniquement par un objet JSON, sans texte autour : {"answer": "ta réponse", "sources": [1, 2]} \
où "sources" liste les numéros des extraits cités (une liste vide si tu ne sais pas)."""

TRANSLATION_SYSTEM_PROMPT = """\
Traduis en français la question de l'utilisateur, posée à un glossaire administratif. Garde tels quels les \
sigles, les noms propres et les termes administratifs français qu'elle contient. Réponds uniquement par la \
traduction, sans guillemets ni commentaire."""

QUESTION_GENERATION_SYSTEM_PROMPT = """\
Tu aides à entraîner le moteur de recherche du glossaire d'une administration française. Pour l'entrée du \
glossaire fournie, écris des questions qu'un agent ou un usager de l'administration taperait vraiment dans la \
barre de recherche pour trouver cette entrée.
Règles :
- Varie les formes : une recherche à partir d'une description, sans le sigle ni le terme ; une reformulation \
avec des mots de tous les jours ; une question qui nomme le sigle ou le terme ; une question en anglais.
- Écris comme les gens écrivent : courtes, parfois sans majuscule ni point d'interrogation.
- N'invente aucun fait absent de la définition.
- Chaque question fait au plus 200 caractères ; ne répète pas deux fois la même question.
Réponds uniquement par un objet JSON, sans texte autour : {"questions": ["question 1", "question 2"]}."""


@dataclass(frozen=True)
class GroundingExtract:
    """One numbered extract given to the LLM."""

    number: int
    term: str
    definition: str
    passage_text: str  # the retrieved passage (its definition or a usage context)
    domain: str = ""


def _extract_block(extract: GroundingExtract) -> str:
    heading = f"[S{extract.number}] {extract.term}" + (f" (domaine : {extract.domain})" if extract.domain else "")
    lines = [heading, f"Définition : {extract.definition}"]
    if extract.passage_text and extract.passage_text != extract.definition and extract.definition not in extract.passage_text:
        lines.append(f"Extrait : {extract.passage_text}")
    return "\n".join(lines)


def answer_messages(*, question: str, extracts: Sequence[GroundingExtract]) -> list[dict[str, str]]:
    """The chat asking for a grounded JSON answer to ``question`` from the numbered extracts."""
    context = "\n\n".join(_extract_block(extract) for extract in extracts)
    return [
        {"role": "system", "content": ANSWER_SYSTEM_PROMPT},
        {"role": "user", "content": f"Extraits :\n\n{context}\n\nQuestion : {question}"},
    ]


def translation_messages(*, text: str) -> list[dict[str, str]]:
    """The chat asking for a French translation of a query."""
    return [
        {"role": "system", "content": TRANSLATION_SYSTEM_PROMPT},
        {"role": "user", "content": text},
    ]


def question_generation_messages(*, term: str, definition: str, domain: str = "", count: int = 3) -> list[dict[str, str]]:
    """The chat asking for ``count`` questions users would type to find this entry, as JSON ``{"questions": [...]}``."""
    lines = [f"Terme : {term}"]
    if domain:
        lines.append(f"Domaine : {domain}")
    lines.append(f"Définition : {definition}")
    entry = "\n".join(lines)
    return [
        {"role": "system", "content": QUESTION_GENERATION_SYSTEM_PROMPT},
        {"role": "user", "content": f"Entrée du glossaire :\n\n{entry}\n\nÉcris {count} questions différentes."},
    ]
