import pytest
from django.contrib.auth import get_user_model

from config.roles import ADMIN, EXPERT, MAINTAINER, assign_role


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    """Artifacts of each test go to its own temporary folder (and passwords hash fast: tests create many users)."""
    from django.core.files.storage import storages

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

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


@pytest.fixture(autouse=True)
def _eager_celery_by_default(settings):
    """Unit tests run tasks inline; live_worker switches a test to a real worker process."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
