import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A web process encodes one short query per request: one torch thread is the fastest, and several workers each
# spinning a thread per core fight over the cores (10x slower on a busy 2-core machine; docs/BENCHMARKS.md).
# Must be set before torch is imported; set OMP_NUM_THREADS to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Same for the ONNX Runtime query encoder (retrieval.encoders): one intra-op thread per session; parallelism comes
# from the workers (docs/BENCHMARKS.md, query_encoders part).
os.environ.setdefault("ONNX_INTRA_OP_THREADS", "1")
application = get_wsgi_application()

from config.broker import log_broker_choice  # noqa: E402  (after Django's set-up, which configures logging)

log_broker_choice()


def _warm_up() -> None:
    """Load the serving model, index and pre-processing dictionaries now, not on the first user's question."""
    import logging

    logger = logging.getLogger("lexique.warm_up")
    try:
        from retrieval.search import search

        search(query="warm-up", top_k=1)
        logger.info("Search is warm")
    except Exception:  # a missing index or model is reported by the first real search, with its reason
        logger.exception("Warm-up failed")


if os.environ.get("LEXIQUE_WARM_UP", "1") != "0":
    import threading

    threading.Thread(target=_warm_up, name="lexique-warm-up", daemon=True).start()
