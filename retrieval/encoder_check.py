"""Build a version's ONNX query encoders, check them against torch, and record the check on the version.

The Django side of ``retrieval.encoders``: it reads the version's model and the frozen test queries, stores the
exported files in the artifact store and writes ``ModelVersion.encoder_check``. Called once per version when
its index is first built (``indexing.index_rebuild``) and by ``manage.py build_encoders``.
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.utils import timezone

from retrieval import artifacts, encoders, encoding, selectors
from retrieval.models import ModelVersion
from retrieval.passages import entry_passages

logger = logging.getLogger(__name__)

CHECK_QUERY_LIMIT = 2000


def encoder_folder(version: ModelVersion) -> str:
    return f"encoders/v{version.number}-{version.pk}"


def _upload_folder(local: Path, prefix: str) -> dict[str, str]:
    """Copy ``local`` into the artifact store under ``prefix``; returns {storage path: sha256}."""
    storage = artifacts.artifact_storage()
    checksums = {}
    for path in sorted(item for item in local.rglob("*") if item.is_file()):
        target = f"{prefix}/{path.relative_to(local).as_posix()}"
        if storage.exists(target):
            storage.delete(target)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
            handle.seek(0)
            storage.save(target, File(handle))
        checksums[target] = digest.hexdigest()
    return checksums


def _check_data(limit: int = CHECK_QUERY_LIMIT) -> tuple[str, list[str], list[frozenset[int]], list[str], list[int]]:
    """(source, query texts, relevant entries per query, passage texts, passage entry ids): the frozen test
    queries and test-side passages as evaluation builds them; on a glossary without a test side yet, the term and
    "C'est quoi ... ?" of every validated entry (the check compares encoders, so no learning leaks through it)."""
    # Imported here: evaluation owns the test set and itself imports retrieval.
    from evaluation.queries import cest_quoi
    from evaluation.services import test_set_build

    test_set = test_set_build()
    if test_set.queries:
        queries = test_set.queries[:limit]
        return (
            "test",
            [query.text for query in queries],
            [query.entry_ids for query in queries],
            [passage.text for passage in test_set.passages],
            [passage.entry_id for passage in test_set.passages],
        )
    texts, relevant, passages = [], [], []
    for entry in selectors.validated_entries():
        passages += entry_passages(entry_id=entry.pk, term=entry.term, definition=entry.definition, contexts=entry.contexts)
        for text in (entry.term, cest_quoi(entry.term)):
            texts.append(text)
            relevant.append(frozenset({entry.pk}))
    return "glossary", texts[:limit], relevant[:limit], [p.text for p in passages], [p.entry_id for p in passages]


def encoders_build(
    *,
    version: ModelVersion,
    export: Callable[[Any, Path], dict[str, str]] = encoders.export_onnx,
) -> dict[str, Any]:
    """Export the version's model to ONNX (fp32 and int8), compare each with torch, store the files and the check.

    Never raises for a model that cannot be exported or a variant that disagrees: the check records the reason
    and torch keeps serving. ``export`` is the exporter (tests pass one that writes a broken variant).
    """
    from retrieval.embedding import encode_documents, encode_queries

    model, spec = encoding.model_for_version(version)
    record: dict[str, Any] = {"checked_at": timezone.now().isoformat(), "variants": {}, "folder": "", "checksums": {}}
    with tempfile.TemporaryDirectory(prefix="lexique-encoders-") as scratch:
        folder = Path(scratch)
        try:
            files = export(model, folder)
        except Exception as error:  # an unsupported architecture, an exporter failure: torch serves
            logger.warning("ONNX export of %s failed: %s", version, error)
            reason = f"export failed: {type(error).__name__}: {error}"
            record["variants"] = {variant: encoders.VariantCheck(variant, False, reason).as_dict() for variant in encoders.ONNX_FILES}
            return _save(version, record)
        source, texts, relevant, passages, passage_entry_ids = _check_data()
        record["query_source"] = source
        passage_vectors = encode_documents(model, spec, passages)
        torch_vectors = encode_queries(model, spec, texts)
        torch_ms = encoders.timed_single_queries(lambda batch: encode_queries(model, spec, batch), texts)
        for variant in files:
            try:
                encoder = encoders.OnnxQueryEncoder(folder, variant=variant, intra_op_threads=encoders.default_intra_op_threads())
                vectors = encoder.encode(texts, prompt=spec.query_prompt)
                check = encoders.compare_variant(
                    variant=variant, torch_vectors=torch_vectors, variant_vectors=vectors, passage_vectors=passage_vectors,
                    passage_entry_ids=passage_entry_ids, relevant=relevant,
                    ms_per_query=encoders.timed_single_queries(lambda batch: encoder.encode(batch, prompt=spec.query_prompt), texts),
                )
            except Exception as error:  # an unreadable file is a failed check, not a failed index build
                check = encoders.VariantCheck(variant, False, f"chargement impossible : {type(error).__name__}: {error}", queries=len(texts))
            check.extra["torch_ms_per_query"] = torch_ms
            record["variants"][variant] = check.as_dict()
        prefix = encoder_folder(version)
        record["folder"] = prefix
        record["checksums"] = _upload_folder(folder, prefix)
    return _save(version, record)


def _save(version: ModelVersion, record: dict[str, Any]) -> dict[str, Any]:
    record["served"] = encoders.choose_variant(record["variants"])
    version.encoder_check = record
    version.save(update_fields=["encoder_check"])
    encoding.forget_encoders(version.pk)
    logger.info(
        "Query encoders of %s: %s serves (%s)", version, record["served"],
        ", ".join(f"{name} {'ok' if check['passed'] else 'refused: ' + check['reason']}" for name, check in record["variants"].items()),
    )
    return record


def encoders_ensure(*, version: ModelVersion) -> None:
    """Build and check the version's ONNX encoders once (the index build calls this); failures only log."""
    if not getattr(settings, "ENCODER_BUILD_ON_INDEX", True):
        return
    if ModelVersion.objects.filter(pk=version.pk).values_list("encoder_check", flat=True).first():
        return  # already built (the instance the caller holds may predate it)
    try:
        encoders_build(version=version)
    except Exception:
        logger.exception("Building the ONNX query encoders of %s failed; torch serves its queries", version)
