"""Settings of the test session: the product's settings, with what a test session must set explicitly.

* its own ``SECRET_KEY`` (the product refuses to start without one when DEBUG is off);
* DEBUG on while the settings load, as for local development (pytest-django still runs each test with DEBUG
  off), so that the test server answers plain HTTP;
* its own queue prefix, unless LEXIQUE_QUEUE_PREFIX is set: a test that publishes a task outside a live
  worker's queues must never leave it on an installation's queues of a shared Redis (the session removes its
  queues at the end).

Set in ``os.environ`` so that the processes the tests start (live workers, servers) inherit the same values.
"""
import os
import uuid

os.environ.setdefault("SECRET_KEY", "lexique-test-session-key-" + "not-secret-" * 4)
os.environ.setdefault("DEBUG", "true")
if "LEXIQUE_QUEUE_PREFIX" not in os.environ:
    # Remembered so that the session removes these queues at its end (tests/conftest.py), and only these.
    os.environ["LEXIQUE_TEST_SESSION_QUEUE_PREFIX"] = os.environ["LEXIQUE_QUEUE_PREFIX"] = f"test-{uuid.uuid4().hex[:8]}-"

from config.settings import *  # noqa: E402,F401,F403
