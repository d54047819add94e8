"""Natural-like questions generated from a glossary entry, of each kind users ask.

Pure functions over plain data (no Django). Two uses:

* training pairs on the train side (``generated_questions``): what users ask is mostly not "C'est quoi X ?" but
  reverse look-ups from a description ("sigle de la direction des finances publiques"), paraphrases, typos,
  lowercase and accent-less acronyms, English glosses. A model trained on term templates only learns
  term -> definition and forgets description -> term (issue 12: hybrid Hit@1 0.32 -> 0.10 after one cycle).
* a synthetic "canary" query set on the TEST side (``canary_queries``) that covers every kind, for the gate.

Everything is deterministic given the seed: the same concept and seed always give the same questions (the
random generator is seeded per concept from a stable hash, so adding a concept never changes another's).
"""
from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from glossary.text import fold
# One vocabulary of kinds, and one set of rules telling them apart (retrieval.question_kinds): the generators
# here make questions of a kind, they never classify one.
from retrieval.question_kinds import ACRONYM, AMBIGUOUS, ENGLISH, KINDS, PARAPHRASE, REVERSE, TYPO

# French and English function words: never keywords, never taken for an acronym when typed in lowercase.
STOPWORDS = frozenset(
    """
    a à au aux avec c ca ça ce ces cet cette chez comme comment d dans de des du elle en est et eux il ils j je l la
    le les leur leurs lui m ma mais me mes moi mon n ne ni nos notre nous on ou où par pas pour qu quand que quel
    quelle quelles quels qui quoi s sa sans se ses si son sont sur t ta te tes toi ton tu un une vos votre vous y
    veut dire signifie signification sigle acronyme abréviation définition definition veut-dire c'est qu'est-ce
    est-ce koi kesako exactement ou bien mon ma mes sur avant après entre ancien ancienne
    the of and for in on to what does is stand stands mean means meaning an by with at from as that this who which
    """.split()
)
ENGLISH_MARKERS = frozenset(
    "the of and what does stand stands mean meaning who which is in french acronym abbreviation agency office "
    "authority fund national service council court department institute school tax benefit allowance".split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

# Light rewrites: a word of the definition -> what a user says instead. They make paraphrase-like questions
# that share fewer words with the definition (the lexical side cannot solve them; the model must).
REWRITES: dict[str, tuple[str, ...]] = {
    "caisse": ("organisme", "caisse"),
    "direction": ("service", "administration"),
    "directions": ("services",),
    "agence": ("organisme", "établissement public"),
    "institut": ("organisme", "établissement"),
    "office": ("organisme",),
    "commission": ("instance", "comité"),
    "comité": ("instance", "commission"),
    "conseil": ("instance", "assemblée"),
    "allocation": ("aide", "prestation"),
    "allocations": ("aides", "prestations"),
    "prestation": ("aide", "allocation"),
    "aide": ("allocation", "soutien"),
    "contribution": ("prélèvement", "cotisation"),
    "taxe": ("impôt",),
    "impôt": ("taxe",),
    "établissement": ("structure",),
    "national": ("de l'état",),
    "nationale": ("de l'état",),
    "départemental": ("du département",),
    "départementale": ("du département",),
    "régional": ("de la région",),
    "régionale": ("de la région",),
    "régionales": ("de la région",),
    "européen": ("de l'europe",),
    "européenne": ("de l'union européenne",),
    "handicapées": ("en situation de handicap",),
    "handicapés": ("en situation de handicap",),
    "âgées": ("seniors",),
    "emploi": ("travail",),
    "recherche": ("études",),
    "logement": ("habitat",),
    "santé": ("soins",),
    "enfance": ("enfants",),
    "jeunesse": ("jeunes",),
    "formation": ("apprentissage",),
    "retraite": ("pension",),
    "tribunal": ("juridiction",),
    "plan": ("programme",),
    "zone": ("secteur",),
}

REVERSE_TEMPLATES = (
    "{description}",
    "sigle {description}",
    "quel est le sigle de {description} ?",
    "acronyme de {description}",
    "comment s'appelle {description} en abrégé",
    "{description} abréviation",
)
PARAPHRASE_TEMPLATES = (
    "{description}",
    "comment s'appelle l'organisme {description}",
    "le nom court de {description}",
    "{description} c'est quel sigle",
)
ACRONYM_TEMPLATES = (
    "{term}",
    "que veut dire {term}",
    "{term} c'est quoi",
    "signification {term}",
    "{lower} ça veut dire quoi",
    "c koi la {lower}",
    "définition de {term}",
    "à quoi correspond le sigle {term} ?",
)
TYPO_TEMPLATES = ("{typo}", "c'est quoi {typo}", "{typo} signification", "que veut dire {typo}")
ENGLISH_TEMPLATES = ("what does {term} stand for", "{term} meaning", "what is {term} in france", "{term} acronym meaning")
ENGLISH_GLOSS_TEMPLATES = ("{gloss}", "{gloss} in french", "what is the french acronym for {gloss}")
AMBIGUOUS_TEMPLATES = ("{term} {keywords}", "{lower} {keywords}", "que veut dire {term} ({keywords})", "{term} au sens de {keywords}")


@dataclass(frozen=True)
class GeneratedQuestion:
    query: str
    kind: str
    entry_id: int


# ---- kinds ---------------------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry meaning (no function words, no single letters), in order."""
    kept = []
    for word in words(text):
        bare = word.split("'")[-1].split("’")[-1]
        if len(bare) > 1 and fold(bare) not in STOPWORDS:
            kept.append(bare)
    return kept


def edit_distance(left: str, right: str, *, limit: int = 2) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1), stopped early above ``limit``."""
    if abs(len(left) - len(right)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(right) + 1))
    for i, lc in enumerate(left, start=1):
        current = [i] + [0] * len(right)
        for j, rc in enumerate(right, start=1):
            cost = 0 if lc == rc else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and lc == right[j - 2] and left[i - 2] == rc:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


# ---- generators ----------------------------------------------------------------------------------------

def concept_rng(seed: int, *parts: object) -> random.Random:
    """A generator seeded from ``seed`` and the parts (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def plain_form(text: str) -> str:
    """Lowercase, accent-less: how many people type on a phone."""
    return fold(text)


def description_of(definition: str) -> str:
    """The definition as a description: no trailing period or parenthesised aside, lowercase."""
    text = re.sub(r"\([^)]*\)", " ", definition)
    text = re.sub(r"\s+", " ", text).strip(" .;")
    return text[:1].lower() + text[1:] if text and not text[:2].isupper() else text


def keyword_subset(definition: str, rng: random.Random, *, low: int = 2, high: int = 4) -> str:
    """A few of the definition's meaningful words, in their order (what people remember of a name)."""
    keys = content_words(description_of(definition))
    if len(keys) <= low:
        return " ".join(keys).lower()
    count = rng.randint(low, min(high, len(keys) - 1) if len(keys) > low + 1 else low)
    chosen = sorted(rng.sample(range(len(keys)), count))
    return " ".join(keys[index] for index in chosen).lower()


def rewrite(description: str, rng: random.Random) -> str:
    """The description with some words replaced by what a user would say (``REWRITES``), some words dropped."""
    out = []
    for word in description.split():
        key = word.lower().strip(",;")
        options = REWRITES.get(key)
        if options and rng.random() < 0.8:
            out.append(rng.choice(options))
        elif key in STOPWORDS or rng.random() < 0.85:
            out.append(word.lower())
    return re.sub(r"\s+", " ", " ".join(out)).strip()


def typo_variants(term: str, *, seed: int, count: int = 3) -> list[str]:
    """Deterministic misspellings of ``term``: a letter dropped, doubled, two swapped, a neighbour key hit."""
    if len(term) < 3:
        return []
    rng = concept_rng(seed, "typo", term)
    lower = term.lower()
    neighbours = {"a": "qzs", "e": "zrd", "i": "uok", "o": "ipl", "u": "yij", "s": "qdz", "c": "xvd", "n": "bhm",
                  "r": "etf", "t": "ryg", "p": "ol", "m": "nl", "d": "sfe", "f": "dgr", "l": "km", "g": "fhk"}
    makers = [
        lambda word, i: word[:i] + word[i + 1:],
        lambda word, i: word[:i] + word[i] + word[i:],
        lambda word, i: word[:i] + word[i + 1] + word[i] + word[i + 2:] if i + 1 < len(word) else word[:i] + word[i] * 2,
        lambda word, i: word[:i] + rng.choice(neighbours.get(word[i], "e")) + word[i + 1:],
    ]
    variants: list[str] = []
    for attempt in range(count * 6):
        maker = makers[attempt % len(makers)]
        position = rng.randrange(1, len(lower))
        variant = maker(lower, position)
        if variant != lower and variant not in variants and len(variant) >= 3:
            variants.append(variant)
        if len(variants) == count:
            break
    return variants


def english_glosses(variants: Iterable[str]) -> list[str]:
    """The variants that read as English (two or more English function words or typical nouns)."""
    glosses = []
    for variant in variants:
        tokens = [fold(token) for token in words(variant)]
        if sum(token in ENGLISH_MARKERS for token in tokens) >= 1 and any(token in ("of", "the", "and", "for") for token in tokens):
            glosses.append(variant)
    return glosses


def _expanded(term: str, definition: str, variants: Sequence[str]) -> str:
    """The description to ask about: the definition, or the longest variant when the definition is empty."""
    return definition or max(variants, key=len, default=term)


def generated_questions(
    *,
    entry_id: int,
    term: str,
    definition: str,
    variants: Sequence[str] = (),
    ambiguous: bool = False,
    seed: int = 13,
    per_kind: int = 2,
    kinds: Collection[str] = KINDS,
) -> list[GeneratedQuestion]:
    """Natural-like questions that this entry answers, ``per_kind`` of each kind in ``kinds`` (when the entry
    allows it: typos need a term of 3+ letters, English needs... nothing, the English templates ask about the
    term; ambiguous needs ``ambiguous``: several entries share the term). Deterministic given ``seed``."""
    rng = concept_rng(seed, entry_id, term, definition)
    description = description_of(_expanded(term, definition, variants))
    lower = term.lower()
    made: dict[str, list[str]] = defaultdict(list)

    def take(kind: str, options: list[str]) -> None:
        seen = {fold(query) for query in made[kind]}
        for option in options:
            option = re.sub(r"\s+", " ", option).strip()
            key = fold(option)
            # A bare term is an acronym question; under any other kind it would teach nothing of that kind.
            if not key or key in seen or (key == fold(term) and kind != ACRONYM):
                continue
            seen.add(key)
            made[kind].append(option)
            if len(made[kind]) >= per_kind:
                return

    def shuffled(templates: Sequence[str]) -> list[str]:
        order = list(templates)
        rng.shuffle(order)
        return order

    if ACRONYM in kinds and not ambiguous:
        take(ACRONYM, [template.format(term=term, lower=lower) for template in shuffled(ACRONYM_TEMPLATES)])
    if REVERSE in kinds and description:
        options = []
        for template in shuffled(REVERSE_TEMPLATES):
            text = description if rng.random() < 0.6 else keyword_subset(definition or description, rng)
            options.append(template.format(description=text))
        options[1:1] = [plain_form(options[0])]
        take(REVERSE, options)
    if PARAPHRASE in kinds and description:
        options = [template.format(description=rewrite(description, rng)) for template in shuffled(PARAPHRASE_TEMPLATES)]
        take(PARAPHRASE, [option for option in options if fold(option) != fold(description)])
    if TYPO in kinds:
        typos = typo_variants(term, seed=seed, count=per_kind + 1)
        take(TYPO, [rng.choice(TYPO_TEMPLATES).format(typo=typo) for typo in typos])
    if ENGLISH in kinds:
        glosses = english_glosses(variants)
        options = [template.format(gloss=gloss) for gloss in glosses for template in shuffled(ENGLISH_GLOSS_TEMPLATES)]
        options += [template.format(term=rng.choice((term, lower))) for template in shuffled(ENGLISH_TEMPLATES)]
        take(ENGLISH, options)
    if AMBIGUOUS in kinds and ambiguous and description:
        options = [
            template.format(term=term, lower=lower, keywords=keyword_subset(definition or description, rng, low=1, high=3))
            for template in shuffled(AMBIGUOUS_TEMPLATES)
        ]
        take(AMBIGUOUS, options)
    return [GeneratedQuestion(query=query, kind=kind, entry_id=entry_id) for kind in KINDS for query in made.get(kind, [])]


def ambiguous_terms(terms: Iterable[str]) -> set[str]:
    """Terms (case and accents folded) that several entries share."""
    counts = Counter(fold(term) for term in terms)
    return {key for key, count in counts.items() if count > 1}


def canary_queries(concepts: Sequence, seed: int = 13, *, per_kind: int = 100) -> list[GeneratedQuestion]:
    """A synthetic query set over ``concepts`` (the TEST side, for the gate) with up to ``per_kind`` queries of
    each kind, spread over as many concepts as possible (one query per concept and kind, concepts drawn with
    ``seed``). Every kind is covered when the concepts allow it (ambiguous needs two concepts sharing a term).

    ``concepts``: objects with ``entry_id``, ``term``, ``definition`` and ``variants`` (``builder.ConceptData``).
    """
    shared = ambiguous_terms(concept.term for concept in concepts)
    by_kind: dict[str, list[GeneratedQuestion]] = defaultdict(list)
    for concept in concepts:
        for question in generated_questions(
            entry_id=concept.entry_id, term=concept.term, definition=concept.definition,
            variants=tuple(getattr(concept, "variants", ()) or ()), ambiguous=fold(concept.term) in shared,
            seed=seed, per_kind=1,
        ):
            by_kind[question.kind].append(question)
    chosen = []
    for kind in KINDS:
        pool = by_kind.get(kind, [])
        rng = concept_rng(seed, "canary", kind)
        chosen.extend(pool if len(pool) <= per_kind else [pool[index] for index in sorted(rng.sample(range(len(pool)), per_kind))])
    return chosen
