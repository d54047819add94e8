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
