"""Fixtures of the retrieval Django-layer tests: a tiny validated glossary and fresh per-process index caches."""
import pytest

from glossary.models import Entry
from tests.factories import DomainFactory, EntryFactory

URSSAF_EXPANSION = "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales"


@pytest.fixture(autouse=True)
def _fresh_served_indexes():
    """Each test has its own database and artifact folder: indexes cached by an earlier test are not its own.

    Loaded models stay cached (they do not depend on the database), so the bundled model loads once.
    """
    from retrieval import serving

    serving.forget_indexes()
    yield
    serving.forget_indexes()


@pytest.fixture
def glossary(db):
    """Six validated entries over two domains, and one draft that search must not see."""
    social = DomainFactory(name="Protection sociale")
    finances = DomainFactory(name="Fiscalité")
    entries = {
        "urssaf": EntryFactory(
            term="URSSAF",
            kind=Entry.Kind.ACRONYM,
            definition="Organisme qui collecte les cotisations et contributions sociales des employeurs et des travailleurs indépendants.",
            variants=[URSSAF_EXPANSION, "Urssaf"],
            contexts=["L'entreprise a versé ses cotisations patronales à l'URSSAF avant le 15 du mois."],
            domain=social,
        ),
        "caf": EntryFactory(
            term="CAF",
            kind=Entry.Kind.ACRONYM,
            definition="Caisse qui verse les prestations familiales et les aides au logement aux allocataires.",
            variants=["Caisse d'allocations familiales"],
            contexts=["La CAF a recalculé l'aide au logement après la déclaration de ressources."],
            domain=social,
        ),
        "tva": EntryFactory(
            term="TVA",
            kind=Entry.Kind.ACRONYM,
            definition="Impôt indirect sur la consommation, collecté par les entreprises et reversé à l'État.",
            variants=["Taxe sur la valeur ajoutée"],
            contexts=["Le taux normal de TVA s'applique à la plupart des ventes de biens."],
            domain=finances,
        ),
        "degrevement": EntryFactory(
            term="Dégrèvement",
            kind=Entry.Kind.TERM,
            definition="Réduction ou annulation d'un impôt déjà établi, accordée par l'administration fiscale.",
            variants=[],
            contexts=["Le contribuable a obtenu un dégrèvement partiel de sa taxe foncière."],
            domain=finances,
        ),
        "rescrit": EntryFactory(
            term="Rescrit fiscal",
            kind=Entry.Kind.TERM,
            definition="Prise de position formelle de l'administration sur l'application d'un texte fiscal à la situation d'un contribuable.",
            variants=["rescrit"],
            contexts=["L'entreprise a demandé un rescrit avant de lancer sa nouvelle offre."],
            domain=finances,
        ),
        "pension": EntryFactory(
            term="Pension de retraite",
            kind=Entry.Kind.TERM,
            definition="Somme versée chaque mois à une personne qui a cessé son activité professionnelle.",
            variants=[],
            contexts=["Sa pension de retraite a été revalorisée au premier janvier."],
            domain=social,
        ),
        "draft": EntryFactory(
            term="CPAM",
            kind=Entry.Kind.ACRONYM,
            definition="Caisse qui rembourse les soins des assurés sociaux de son département.",
            variants=["Caisse primaire d'assurance maladie"],
            status=Entry.Status.DRAFT,
            domain=social,
        ),
    }
    return entries
