import factory
from django.utils.text import slugify

from glossary.models import Domain, Entry


class DomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Domain
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Domaine {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))


class EntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Entry

    term = factory.Sequence(lambda n: f"TERME{n}")
    kind = Entry.Kind.ACRONYM
    definition = factory.Sequence(lambda n: f"Définition numéro {n} d'un terme administratif")
    domain = factory.SubFactory(DomainFactory)
    status = Entry.Status.VALIDATED
    contexts = factory.LazyAttribute(lambda o: [f"Le {o.term} est utilisé dans un dossier."])
    variants = factory.LazyFunction(list)
