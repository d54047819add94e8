"""Glossary edits reach the serving indexes: each saved or deleted entry is re-indexed after commit. A saved or
deleted model version makes this process read again which version "champion" (or "v3") names.

The glossary app never imports retrieval; retrieval listens to its model signals instead.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from glossary.models import Entry
from glossary.services import entries_bulk_created
from retrieval import indexing, serving
from retrieval.models import ModelVersion


@receiver(post_save, sender=Entry, dispatch_uid="retrieval-index-saved-entry")
def index_saved_entry(sender, instance: Entry, raw: bool = False, **kwargs) -> None:
    if not raw:  # fixtures loaded with loaddata are indexed by the next full build
        indexing.index_entry_enqueue(entry_id=instance.pk)


@receiver(post_delete, sender=Entry, dispatch_uid="retrieval-index-deleted-entry")
def index_deleted_entry(sender, instance: Entry, **kwargs) -> None:
    indexing.index_entry_enqueue(entry_id=instance.pk)


@receiver(entries_bulk_created, dispatch_uid="retrieval-index-bulk-created")
def index_bulk_created(sender, entry_ids: list[int], **kwargs) -> None:
    """A bulk import saves no rows one by one: rebuild the serving indexes that exist, once, in a worker."""
    indexing.index_rebuild_after_bulk(entry_count=len(entry_ids))


@receiver(post_save, sender=ModelVersion, dispatch_uid="retrieval-version-saved")
@receiver(post_delete, sender=ModelVersion, dispatch_uid="retrieval-version-deleted")
def forget_version_refs(sender, **kwargs) -> None:
    # Now for this thread's next search, and after the commit for a search that read the version meanwhile.
    serving.forget_versions()
    transaction.on_commit(serving.forget_versions)
