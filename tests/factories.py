import factory
from django.utils.text import slugify

from glossary.models import Domain, Entry, ImportBatch
from jobs.models import Job


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


def import_batch(*, status: str = ImportBatch.Status.IMPORTED, options: dict | None = None, **fields) -> ImportBatch:
    """A batch shown in ``status``: its job holds the lifecycle (a preview or an import that succeeded, as its
    options say)."""
    job_status = {ImportBatch.Status.PREVIEWED: Job.Status.SUCCEEDED, ImportBatch.Status.IMPORTED: Job.Status.SUCCEEDED}.get(status, status)
    job = Job.objects.create(kind="import", status=job_status)
    fields.setdefault("file_name", "g.csv")
    fields.setdefault("file_format", "csv")
    return ImportBatch.objects.create(job=job, options={"dry_run": status == ImportBatch.Status.PREVIEWED, **(options or {})}, **fields)
