"""The glossary REST API: thin views over glossary.services, glossary.selectors and glossary.imports.

Errors are JSON with a ``reason`` and a ``code``, mapped from the services' refusals in one place (config.api):
409 for a duplicate entry (code ``duplicate``), an edit that started from an old revision (``stale``), a
domain that still has entries (``not_empty``); 400 for a file that cannot be imported (``refused``), 413 for
one over the size limit (``too_large``).
"""
from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import ErrorSerializer
from config.roles import IsExpertOrReadOnly
from glossary import imports, selectors, services
from glossary.models import Domain, Entry, ImportBatch
from glossary.serializers import (
    BulkStatusResultSerializer,
    BulkStatusSerializer,
    DomainSerializer,
    EntryCreateSerializer,
    EntryFilterSerializer,
    EntryHistorySerializer,
    EntrySerializer,
    EntryUpdateSerializer,
    ExportQuerySerializer,
    ImportBatchSerializer,
    ImportQueuedSerializer,
    ImportRejectedSerializer,
    ImportReportSerializer,
    ImportRequestSerializer,
)

ERRORS_READ = {401: ErrorSerializer, 404: ErrorSerializer}
ERRORS_WRITE = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer}
# Uploads above this size (and spreadsheets) are imported or previewed by a worker even without
# ``async=true``, so that a request never holds a web worker for minutes or gigabytes.
SYNC_IMPORT_MAX_BYTES = settings.IMPORT_SYNC_MAX_BYTES


class EntryPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class EntryOrdering(OrderingFilter):
    """``ordering=term`` sorts like the glossary does, ignoring case and accents (Élysée between CAF and TVA)."""

    SORT_KEYS = {"term": "term_key"}

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        return [self._sort_key(field) for field in ordering] + ["id"]

    def _sort_key(self, field: str) -> str:
        name = field.lstrip("-")
        return ("-" if field.startswith("-") else "") + self.SORT_KEYS.get(name, name)


def validated(serializer_class: type[serializers.Serializer], data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List domains with their entry counts", responses={200: DomainSerializer, **ERRORS_READ}),
    retrieve=extend_schema(summary="One domain", responses={200: DomainSerializer, **ERRORS_READ}),
    create=extend_schema(summary="Create a domain (expert)", responses={201: DomainSerializer, **ERRORS_WRITE}),
    update=extend_schema(summary="Rename or describe a domain (expert)", responses={200: DomainSerializer, **ERRORS_WRITE, 404: ErrorSerializer}),
    partial_update=extend_schema(summary="Rename or describe a domain (expert)", responses={200: DomainSerializer, **ERRORS_WRITE, 404: ErrorSerializer}),
    destroy=extend_schema(
        summary="Delete an empty domain (expert)",
        responses={204: None, **ERRORS_WRITE, 404: ErrorSerializer, 409: OpenApiResponse(ErrorSerializer, "The domain still has entries.")},
    ),
)
class DomainViewSet(viewsets.ModelViewSet):
    serializer_class = DomainSerializer
    permission_classes = [IsExpertOrReadOnly]
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Domain]:
        return selectors.domain_list()

    def create(self, request, *args, **kwargs):
        data = validated(DomainSerializer, request.data)
        self._refuse_taken_name(data["name"])
        domain = services.domain_get_or_create(name=data["name"])
        services.domain_update(domain=domain, description=data.get("description", ""))
        return Response(DomainSerializer(self.get_queryset().get(pk=domain.pk)).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, partial=False, **kwargs):
        domain = self.get_object()
        data = validated(DomainSerializer, request.data, instance=domain, partial=partial)
        services.domain_update(domain=domain, name=data.get("name"), description=data.get("description"))
        return Response(DomainSerializer(self.get_queryset().get(pk=domain.pk)).data)

    def destroy(self, request, *args, **kwargs):
        services.domain_delete(domain=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _refuse_taken_name(name: str) -> None:
        # domain_get_or_create returns an existing domain of that name; creating through the API must not.
        if selectors.domain_list().filter(name__iexact=name.strip()).exists():
            raise exceptions.ValidationError({"name": [_("A domain already has this name.")]})


ENTRY_CONFLICTS = {
    409: OpenApiResponse(ErrorSerializer, "Duplicate (code `duplicate`: same term with the same definition) or stale edit (code `stale`)."),
}


@extend_schema_view(
    list=extend_schema(summary="List and search entries", parameters=[EntryFilterSerializer], responses={200: EntrySerializer, 400: ErrorSerializer, 401: ErrorSerializer}),
    retrieve=extend_schema(summary="One entry, with its revision and provenance", responses={200: EntrySerializer, **ERRORS_READ}),
    create=extend_schema(
        summary="Create an entry (expert)", request=EntryCreateSerializer,
        description="The response also lists `same_term_entries`: the other entries of the same term (case- and accent-folded), "
        "each with `verdict` `duplicate` (the definition reads as the same sense) or `new_sense`. Nothing is refused for it.",
        responses={201: EntrySerializer, **ERRORS_WRITE, **ENTRY_CONFLICTS},
    ),
    update=extend_schema(
        summary="Edit an entry (expert)", request=EntryUpdateSerializer,
        description="Fields left out keep their value. Send `revision` to refuse the edit (409) when someone else changed the entry meanwhile.",
        responses={200: EntrySerializer, **ERRORS_WRITE, 404: ErrorSerializer, **ENTRY_CONFLICTS},
    ),
    partial_update=extend_schema(
        summary="Edit some fields of an entry (expert)", request=EntryUpdateSerializer,
        description="Send `revision` (from the entry as you read it) to refuse the edit (409) when someone else changed it meanwhile.",
        responses={200: EntrySerializer, **ERRORS_WRITE, 404: ErrorSerializer, **ENTRY_CONFLICTS},
    ),
    destroy=extend_schema(summary="Delete an entry (expert)", responses={204: None, **ERRORS_WRITE, 404: ErrorSerializer}),
)
class EntryViewSet(viewsets.ModelViewSet):
    serializer_class = EntrySerializer
    permission_classes = [IsExpertOrReadOnly]
    filter_backends = [EntryOrdering]
    pagination_class = EntryPagination
    ordering_fields = ["term", "created_at", "updated_at", "status", "kind", "id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Entry]:
        filters = {}
        if self.action == "list" and not getattr(self, "swagger_fake_view", False):
            filters = validated(EntryFilterSerializer, self.request.query_params)
        return selectors.entry_list(**filters).select_related("created_by")

    def create(self, request, *args, **kwargs):
        data = validated(EntryCreateSerializer, request.data)
        entry = services.entry_create(**data, created_by=request.user)
        body = EntrySerializer(entry).data
        # Not a refusal (acronyms have several senses): the other entries of the same term, so that a client can
        # warn as the web form does. An extra key, which existing clients ignore.
        body["same_term_entries"] = [
            {"id": item["entry"].pk, "term": item["entry"].term, "verdict": item["verdict"]}
            for item in selectors.same_term_entries(term=entry.term, definition=entry.definition, exclude_id=entry.pk)
        ]
        return Response(body, status=status.HTTP_201_CREATED)

    def update(self, request, *args, partial=False, **kwargs):
        entry = self.get_object()
        data = validated(EntryUpdateSerializer, request.data, partial=partial)
        revision = data.pop("revision", None)
        entry = services.entry_update(entry=entry, data=data, user=request.user, expected_revision=revision)
        return Response(EntrySerializer(entry).data)

    def destroy(self, request, *args, **kwargs):
        services.entry_delete(entry=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Validate an entry (expert)", request=None, responses={200: EntrySerializer, **ERRORS_WRITE, 404: ErrorSerializer, **ENTRY_CONFLICTS})
    @action(detail=True, methods=["post"], url_path="validate")
    def validate_entry(self, request, pk=None):
        return self._set_status(Entry.Status.VALIDATED)

    @extend_schema(summary="Reject an entry (expert)", request=None, responses={200: EntrySerializer, **ERRORS_WRITE, 404: ErrorSerializer, **ENTRY_CONFLICTS})
    @action(detail=True, methods=["post"], url_path="reject")
    def reject_entry(self, request, pk=None):
        return self._set_status(Entry.Status.REJECTED)

    def _set_status(self, new_status: str) -> Response:
        entry = services.entry_set_status(entry=self.get_object(), status=new_status, user=self.request.user)
        return Response(EntrySerializer(entry).data)

    @extend_schema(
        summary="Set the status of several entries (expert)", request=BulkStatusSerializer,
        responses={200: BulkStatusResultSerializer, **ERRORS_WRITE, **ENTRY_CONFLICTS},
    )
    @action(detail=False, methods=["post"], url_path="bulk-status")
    def bulk_status(self, request):
        data = validated(BulkStatusSerializer, request.data)
        changed = services.entries_bulk_set_status(entry_ids=data["ids"], status=data["status"], user=request.user)
        return Response({"changed": changed})

    @extend_schema(summary="Changes of an entry, newest first", responses={200: EntryHistorySerializer(many=True), **ERRORS_READ})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        rows = selectors.entry_history(entry=self.get_object())
        return Response(EntryHistorySerializer(rows, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="Imports, newest first", responses={200: ImportBatchSerializer, 401: ErrorSerializer}),
    retrieve=extend_schema(summary="One import: status, counts and report", responses={200: ImportBatchSerializer, **ERRORS_READ}),
)
class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ImportBatchSerializer
    permission_classes = [IsExpertOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]
    filter_backends: list = []
    queryset = ImportBatch.objects.select_related("created_by", "job")

    @extend_schema(
        summary="Import a file of entries (expert)",
        description=(
            "Small files are imported during the request: the answer is the report (201 when imported, entries already "
            "in the glossary counting as unchanged; 200 for a dry run). When rows are invalid and `skip_invalid` is false nothing is "
            "imported and the answer is 400 with the report (errors carry line numbers). With `async=true`, for "
            f"files over {SYNC_IMPORT_MAX_BYTES // (1024 * 1024)} MiB and for every xlsx file (dry runs included), the "
            "import is queued for a worker: 202 with the batch id, to follow at `/api/imports/{id}/` (a dry run ends "
            "`previewed`, its `report` holding the errors and the first rows). 409 when the import kept meeting "
            "concurrent writes of the same entries (nothing imported)."
        ),
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            200: ImportReportSerializer,
            201: ImportReportSerializer,
            202: ImportQueuedSerializer,
            400: OpenApiResponse(ImportRejectedSerializer, "Invalid rows, nothing imported; or an invalid request or file (`reason`)."),
            401: ErrorSerializer,
            403: ErrorSerializer,
            409: ErrorSerializer,
            413: ErrorSerializer,
        },
    )
    def create(self, request, *args, **kwargs):
        options = validated(ImportRequestSerializer, request.data)
        upload = options.pop("file")
        imports.check_size(size=upload.size)
        content = upload.read()
        options["domain"] = options["domain"] or None
        wants_async = options.pop("async")
        needs_worker = imports.preview_in_worker(size=len(content), file_format=options["format"])
        if needs_worker or (wants_async and not options["dry_run"]):
            return self._enqueue(content=content, file_name=upload.name, options=options)
        return self._import_now(content=content, file_name=upload.name, options=options)

    def _import_now(self, *, content: bytes, file_name: str, options: dict) -> Response:
        report = imports.import_file(
            content=content, file_name=file_name, file_format=options["format"], domain=options["domain"],
            status=options["status"], split=options["split"], dry_run=options["dry_run"],
            skip_invalid=options["skip_invalid"], user=self.request.user,
        )
        body = report.as_dict()
        if report.imported:
            return Response(body, status=status.HTTP_201_CREATED)
        if report.errors and not report.dry_run:
            reason = _("%(count)s invalid line(s): nothing was imported.") % {"count": len({error.line for error in report.errors})}
            return Response({"reason": reason, "code": "invalid_rows", **body}, status=status.HTTP_400_BAD_REQUEST)
        return Response(body)

    def _enqueue(self, *, content: bytes, file_name: str, options: dict) -> Response:
        batch = imports.import_enqueue(
            content=content, file_name=file_name, file_format=options.pop("format"), options=options, user=self.request.user,
        )
        url = reverse("api-import-detail", kwargs={"pk": batch.pk})
        return Response({"batch_id": batch.pk, "status": batch.status, "url": url}, status=status.HTTP_202_ACCEPTED)


class _IgnoreFormatQueryParameter(DefaultContentNegotiation):
    """``?format=`` names the export file format here, not DRF's response renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


EXPORT_MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportView(APIView):
    content_negotiation_class = _IgnoreFormatQueryParameter

    @extend_schema(
        summary="Download the whole glossary",
        parameters=[OpenApiParameter("format", str, enum=list(imports.EXPORT_FORMATS), default="csv", description="File format.")],
        responses={(200, media_type.split(";")[0]): OpenApiTypes.BINARY for media_type in EXPORT_MEDIA_TYPES.values()}
        | {400: ErrorSerializer, 401: ErrorSerializer},
    )
    def get(self, request):
        file_format = validated(ExportQuerySerializer, request.query_params)["format"]
        content = imports.export_glossary(file_format=file_format)
        response = HttpResponse(content, content_type=EXPORT_MEDIA_TYPES[file_format])
        response["Content-Disposition"] = f'attachment; filename="lexique-glossaire.{file_format}"'
        return response
