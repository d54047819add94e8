"""Synthetic glossaries of any size for the scale benchmarks, and the benchmark question texts.

Entries are acronyms with a definition and one usage context, written from a fixed French administrative
vocabulary (and, when the shared data is there, the words of the real sigles definitions), with a seeded
random generator: the same size always gives the same glossary.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.environment import QUESTIONS_PATH
from glossary.text import collapse_spaces, fold
from retrieval.passages import EntryData, Passage, passages_of

WORDS = """
agence autorité allocation assurance bureau caisse centre chambre comité commission compte conseil contrat
contribution cotisation délégation département direction dotation droit école emploi entreprise établissement
fonds formation groupement impôt inspection institut logement maison mission observatoire office organisme
plan prestation programme régime registre réseau revenu schéma secrétariat service société syndicat taxe
tribunal union zone national nationale régional régionale départemental départementale communal public publique
général générale social sociale familial familiale professionnel professionnelle économique européen européenne
agricole médical médicale territorial territoriale universitaire prioritaire solidarité santé retraite famille
handicap travail jeunesse culture sport environnement énergie transport urbanisme habitat recherche sécurité
finances budget statistique justice défense douane police agriculture forêt mer littoral industrie commerce
artisanat tourisme numérique données information communication coopération développement aménagement protection
prévention contrôle gestion recouvrement financement accompagnement insertion orientation évaluation qualité
""".split()
CONTEXT_OPENINGS = (
    "Le dossier a été transmis à la {term} pour instruction.",
    "Les agents de la {term} ont rendu leur avis sur le projet.",
    "La demande doit être adressée à la {term} avant la fin du mois.",
    "Un rapport de la {term} sur ce sujet est attendu.",
)


def vocabulary_from_sigles(data_dir: Path) -> list[str]:
    """Words of the real sigles definitions, to give BM25 a realistic vocabulary; empty without the data."""
    path = data_dir / "sigles.csv"
    if not path.exists():
        return []
    words: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            words.update(word for word in re.findall(r"[^\W\d_]{4,}", row["definition"].lower()))
    return sorted(words)


def synthetic_entries(count: int, *, extra_words: list[str] | None = None, seed: int = 7, first_id: int = 1) -> list[EntryData]:
    """``count`` entries, each with a definition and one usage context (two passages)."""
    rng = random.Random(seed)
    words = WORDS + (extra_words or [])
    entries = []
    for offset in range(count):
        length = rng.randint(4, 9)
        definition = " ".join(rng.choice(words) for _ in range(length))
        definition = definition[0].upper() + definition[1:]
        term = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 5))) + str(offset)
        context = rng.choice(CONTEXT_OPENINGS).format(term=term) + " " + " ".join(rng.choice(words) for _ in range(6)) + "."
        entries.append(
            EntryData(id=first_id + offset, term=term, definition=definition, kind="acronym", contexts=(context,), domain="")
        )
    return entries


def synthetic_passages(entries: list[EntryData]) -> list[Passage]:
    return [passage for entry in entries for passage in passages_of(entry)]


def random_unit_vectors(count: int, dimension: int, *, seed: int = 11) -> np.ndarray:
    """Stand-ins for encoded passages beyond the ones really encoded: the exact scan costs the same."""
    vectors = np.random.default_rng(seed).standard_normal((count, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


@dataclass(frozen=True)
class Question:
    query: str
    term: str
    definition: str
    category: str


def questions(path: Path = QUESTIONS_PATH) -> list[Question]:
    """The sigles question set (bench/data only: it must never reach training data)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Question(row["query"], row["term"], row["definition"], row.get("category", "")) for row in rows]


DEV, TEST = "dev", "test"


def question_split(query: str) -> str:
    """The question's half of the sigles question set: "dev" (tuning) or "test" (the reported numbers), from a
    hash of the normalised question (case, accents and spaces folded): stable whatever else the file holds."""
    digest = hashlib.sha256(fold(collapse_spaces(query)).strip().encode()).digest()
    return TEST if digest[0] % 2 else DEV
