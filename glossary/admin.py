"""Django admin for the glossary. Entry writes go through glossary.services so that the same rules apply."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from glossary import services
from glossary.models import Domain, Entry, ImportBatch


class DomainAdminForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ("name", "description")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Domain.objects.filter(name__iexact=name.strip()).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("A domain already has this name."), code="duplicate")
        return name


@admin.register(Domain)
class DomainAdmin(SimpleHistoryAdmin):
    form = DomainAdminForm
    list_display = ("name", "slug", "entry_count", "created_at")
    search_fields = ("name", "description")
    fields = ("name", "slug", "description")
    readonly_fields = ("slug",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(entry_count=Count("entries"))

    @admin.display(description=_("entries"), ordering="entry_count")
    def entry_count(self, domain: Domain) -> int:
        return domain.entry_count

    def save_model(self, request, obj: Domain, form, change: bool) -> None:
        # The services keep names unique regardless of case and derive the slug.
        if change:
            services.domain_update(domain=obj, name=form.cleaned_data["name"], description=form.cleaned_data["description"])
            return
        created = services.domain_get_or_create(name=form.cleaned_data["name"])
        services.domain_update(domain=created, description=form.cleaned_data["description"])
        obj.pk = created.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj: Domain) -> None:
        services.domain_delete(domain=obj)


class EntryAdminForm(forms.ModelForm):
    # The revision the editor started from, so that a concurrent edit is refused rather than overwritten.
    revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Entry
        fields = ("term", "kind", "definition", "variants", "contexts", "examples", "domain", "status", "source", "source_url", "revision")

    def _clean_list(self, field: str) -> list:
        value = self.cleaned_data.get(field)
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise forms.ValidationError(_('Enter a JSON list, for example ["…", "…"].'), code="not_a_list")
        return value

    def clean_variants(self) -> list:
        return self._clean_list("variants")

    def clean_contexts(self) -> list:
        return self._clean_list("contexts")

    def clean_examples(self) -> list:
        examples = self._clean_list("examples")
        if not all(isinstance(item, dict) for item in examples):
            raise forms.ValidationError(
                _('Each example is an object {"question": …, "answer": …}.'), code="not_an_example"
            )
        return examples

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and cleaned.get("revision") is not None:
            stored_revision = Entry.objects.filter(pk=self.instance.pk).values_list("revision", flat=True).first()
            if stored_revision != cleaned["revision"]:
                raise forms.ValidationError(
                    _("Someone else changed this entry while you were editing it. Reload it, then make your changes again."),
                    code="stale",
                )
        term, definition = cleaned.get("term"), cleaned.get("definition")
        if term and definition:
            duplicate = services.find_duplicate(term=term, definition=definition, exclude_id=self.instance.pk)
            if duplicate:
                raise forms.ValidationError(
                    _("Duplicate: “%(term)s” already has this definition (entry no. %(id)s).") % {"term": duplicate.term, "id": duplicate.pk},
                    code="duplicate",
                )
        return cleaned


@admin.register(Entry)
class EntryAdmin(SimpleHistoryAdmin):
    form = EntryAdminForm
    list_display = ("term", "kind", "domain", "status", "split", "import_batch", "updated_at")
    list_filter = ("status", "kind", "domain", "split", "split_pinned")
    search_fields = ("term", "definition", "variants", "source")
    list_select_related = ("domain", "import_batch")
    readonly_fields = ("split", "split_pinned", "import_batch", "created_by", "created_at", "updated_at")
    list_per_page = 50

    def revert_disabled(self, request, obj=None) -> bool:
        # Reverting would write an old revision over the current one: experts edit instead.
        return True

    def save_model(self, request, obj: Entry, form, change: bool) -> None:
        data = {field: form.cleaned_data[field] for field in services.EDITABLE_FIELDS if field in form.cleaned_data}
        if change:
            saved = services.entry_update(
                entry=obj, data=data, user=request.user, expected_revision=form.cleaned_data.get("revision")
            )
        else:
            saved = services.entry_create(**data, created_by=request.user)
        # The admin goes on with ``obj`` (messages, redirect, log): make it the saved row.
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj: Entry) -> None:
        services.entry_delete(entry=obj, user=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for entry in queryset:
            services.entry_delete(entry=entry, user=request.user)


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ("file_name", "file_format", "status", "created_count", "unchanged_count", "invalid_count", "created_by", "created_at")
    list_filter = ("job__status", "file_format")
    list_select_related = ("job", "created_by")
    search_fields = ("file_name", "file_sha256", "job__error")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in ImportBatch._meta.fields] + ["status", "error"]

    def has_add_permission(self, request) -> bool:
        # Imports are started from the import page or the import_glossary command, which validate the file.
        return False
