"""The broker choice: configured URL, else local Redis when it answers, else the embedded filesystem broker."""
import socket
import socketserver
import threading

import pytest
from kombu import Connection

from config import broker
from config.broker import LOCAL_REDIS_URL, choose_broker, redis_answers


def test_configured_url_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(broker, "redis_answers", lambda url, **kw: pytest.fail("must not probe Redis"))
    choice = choose_broker({"CELERY_BROKER_URL": "redis://queue.example:6380/2"}, tmp_path)
    assert choice.url == "redis://queue.example:6380/2"
    assert choice.transport_options == {}
    assert not choice.is_embedded


def test_redis_url_is_read_too(tmp_path):
    assert choose_broker({"REDIS_URL": "redis://cache.example:6379/1"}, tmp_path).url == "redis://cache.example:6379/1"


def test_configured_filesystem_url_gives_the_embedded_broker(tmp_path):
    choice = choose_broker({"CELERY_BROKER_URL": "filesystem://"}, tmp_path)
    assert choice.is_embedded
    assert choice.transport_options["data_folder_in"] == str(tmp_path / "broker" / "queue")


def test_local_redis_is_used_when_it_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(broker, "redis_answers", lambda url, **kw: url == LOCAL_REDIS_URL)
    choice = choose_broker({}, tmp_path)
    assert choice.url == LOCAL_REDIS_URL
    assert "Redis" in choice.reason


def test_embedded_broker_when_redis_is_silent(tmp_path, monkeypatch):
    monkeypatch.setattr(broker, "redis_answers", lambda url, **kw: False)
    choice = choose_broker({}, tmp_path)
    assert choice.url == "filesystem://"
    assert (tmp_path / "broker" / "queue").is_dir()
    assert (tmp_path / "broker" / "processed").is_dir()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_answers_is_false_on_an_unused_port():
    assert redis_answers(f"redis://127.0.0.1:{_unused_port()}/0") is False


class _FakeRedisHandler(socketserver.BaseRequestHandler):
    reply = b"+PONG\r\n"

    def handle(self):
        if self.request.recv(16).startswith(b"PING"):
            self.request.sendall(self.reply)


@pytest.mark.parametrize("reply,expected", [(b"+PONG\r\n", True), (b"-NOAUTH Authentication required.\r\n", True), (b"HTTP/1.1 400\r\n", False)])
def test_redis_answers_speaks_the_redis_protocol(reply, expected):
    handler = type("Handler", (_FakeRedisHandler,), {"reply": reply})
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            port = server.server_address[1]
            assert redis_answers(f"redis://127.0.0.1:{port}/0", timeout=2) is expected
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_filesystem_broker_delivers_a_message_without_any_server(tmp_path):
    choice = choose_broker({"CELERY_BROKER_URL": "filesystem://"}, tmp_path)
    with Connection(choice.url, transport_options=choice.transport_options) as connection:
        queue = connection.SimpleQueue("lexique-broker-test")
        try:
            queue.put({"entry_id": 42})
            message = queue.get(timeout=5)
            message.ack()
            assert message.payload == {"entry_id": 42}
        finally:
            queue.close()
    assert not any((tmp_path / "broker" / "queue").iterdir()), "an acknowledged message leaves no file behind"


# --- Queue prefixes (issue #13 item 8, issue #16 item 11) ---

from config.broker import BrokerChoice, choose_queue_prefix, installation_queue_name  # noqa: E402

_REDIS = BrokerChoice("redis://127.0.0.1:6379/0")


def test_queue_prefix_comes_from_the_database_on_redis_and_is_stable():
    a = {"ENGINE": "django.db.backends.postgresql", "HOST": "db", "PORT": 5432, "NAME": "lexique_a"}
    b = {**a, "NAME": "lexique_b"}
    first, second = choose_queue_prefix({}, _REDIS, a).prefix, choose_queue_prefix({}, _REDIS, b).prefix
    assert first.startswith("lexique-") and second.startswith("lexique-") and first != second
    assert choose_queue_prefix({}, _REDIS, dict(a)).prefix == first
    assert choose_queue_prefix({"LEXIQUE_QUEUE_PREFIX": "mine-"}, _REDIS, a).prefix == "mine-"
    assert choose_queue_prefix({"LEXIQUE_QUEUE_PREFIX": ""}, _REDIS, a).prefix == ""
    assert choose_queue_prefix({}, BrokerChoice("filesystem://"), a).prefix == ""


def test_worker_queue_names_from_the_readme_mean_this_installations_queues():
    assert installation_queue_name("default", "lexique-ab12-") == "lexique-ab12-default"
    assert installation_queue_name("training", "lexique-ab12-") == "lexique-ab12-training"
    assert installation_queue_name("lexique-ab12-training", "lexique-ab12-") == "lexique-ab12-training"
    assert installation_queue_name("default", "") == "default"
    assert installation_queue_name("celery", "p-") == "celery"


def test_a_worker_started_with_q_default_training_consumes_the_prefixed_queues(settings):
    from types import SimpleNamespace

    from config.celery import app, consume_this_installations_queues

    queues = app.amqp.Queues({})
    queues.select(["default", "training"])
    consume_this_installations_queues(sender="w@host", instance=SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=queues))))
    assert sorted(queues.consume_from) == [settings.QUEUE_PREFIX + "default", settings.QUEUE_PREFIX + "training"]


def test_the_test_session_publishes_to_its_own_prefixed_queues(settings):
    """A test that publishes outside a live worker (the probe found a run_training left on Redis's `training`)."""
    from config.celery import app
    from tests.live import LiveWorker

    prefix = settings.QUEUE_PREFIX
    assert prefix, "the test session must have a queue prefix (tests/settings.py)"
    assert settings.CELERY_TASK_DEFAULT_QUEUE == f"{prefix}default" and settings.TRAINING_QUEUE == f"{prefix}training"
    # A stopped live worker gives the Celery app back the session's routes, never the bare queue names.
    LiveWorker().stop()
    for task in ("training.tasks.run_training", "evaluation.tasks.evaluate_version", "retrieval.tasks.index_entry"):
        queue = app.amqp.router.route({}, task)["queue"].name
        assert queue.startswith(prefix), (task, queue)
        assert queue not in ("default", "training", "celery")
