"""The training cycle is not driven by signals any more: see training.pipeline (train -> evaluate -> gate ->
promote). Signals remain only for cache and index invalidation (glossary and retrieval)."""
