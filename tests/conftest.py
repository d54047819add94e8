import pytest
from django.contrib.auth import get_user_model

from config.roles import ADMIN, EXPERT, MAINTAINER, assign_role


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    """Artifacts of each test go to its own temporary folder (and passwords hash fast: tests create many users)."""
    from django.core.files.storage import storages

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Exporting and checking ONNX encoders takes seconds per index build: only tests/retrieval/test_encoders* do it.
    settings.ENCODER_BUILD_ON_INDEX = False

    location = tmp_path / "artifacts"
    location.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
        "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    storages._storages = {}
    storages._backends = None
    yield
    storages._storages = {}
    storages._backends = None


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts and ends in the installation's language: a page asked in English (LocaleMiddleware
    activates the request's language in this thread) must not make the next test read English."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


def _user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    if role:
        assign_role(user, role)
    return user


@pytest.fixture
def expert(db):
    return _user("expert", EXPERT)


@pytest.fixture
def maintainer(db):
    return _user("maintainer", MAINTAINER)


@pytest.fixture
def admin_user(db):
    return _user("boss", ADMIN)


@pytest.fixture
def reader(db):
    """Logged in, no role."""
    return _user("reader", None)


@pytest.fixture
def expert_client(client, expert):
    client.force_login(expert)
    return client


@pytest.fixture
def maintainer_client(client, maintainer):
    client.force_login(maintainer)
    return client


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def live_worker(transactional_db):
    """A real Celery worker process on the real broker (Redis when it answers), sharing the test DB."""
    from tests.live import LiveWorker

    worker = LiveWorker().start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session", autouse=True)
def _session_queues_removed_at_the_end():
    """The session's own queues (tests/settings.py gives it a prefix) go away with anything a test left in them.

    A test that publishes outside a live worker's queues (after stopping one, for instance) must not leave a
    message behind on the broker that other installations and sessions share.
    """
    yield
    import os

    from django.conf import settings

    from tests.live import delete_queues

    # Only a prefix the session made for itself: an explicit one may name an installation's queues.
    if settings.QUEUE_PREFIX and settings.QUEUE_PREFIX == os.environ.get("LEXIQUE_TEST_SESSION_QUEUE_PREFIX"):
        try:
            delete_queues([settings.CELERY_TASK_DEFAULT_QUEUE, settings.TRAINING_QUEUE])
        except Exception as error:  # a broker that went away: nothing to clean, and no reason to fail the session
            print(f"Could not remove the session's queues: {error}")


@pytest.fixture(autouse=True)
def _eager_celery_by_default(settings):
    """Unit tests run tasks inline; live_worker switches a test to a real worker process."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture(autouse=True)
def _forget_served_indexes():
    """Each test has its own database and artifact folder: served indexes cached by an earlier test (same version
    id and index revision, another glossary), and the API tokens it authenticated, are not its own. Loaded models
    stay cached."""
    from config import authentication
    from retrieval import serving

    serving.forget_indexes()
    authentication.forget_tokens()
    yield
    serving.forget_indexes()
    authentication.forget_tokens()
