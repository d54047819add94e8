"""A tiny local OpenAI-compatible server for LLM tests: scripted replies, a slow mode and a broken mode.

    with running_llm_server() as server:
        server.replies.append('{"answer": "... [S1]", "sources": [1]}')
        client = LLMClient(base_url=server.base_url, model="test", timeout=2)

Modes: "script" (default) answers with the queued replies in order (then with ``default_reply``),
"sleep" waits ``sleep_seconds`` before answering (past the client's timeout), "malformed" answers with
content that is not JSON. Every request body is kept in ``requests``.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MALFORMED_CONTENT = "Bien sûr ! Voici la réponse : l'URSSAF collecte les cotisations (sans JSON)."


class _Handler(BaseHTTPRequestHandler):
    server: LLMTestServer

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"unknown path {self.path}"}})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append(body)
        if self.server.mode == "sleep":
            time.sleep(self.server.sleep_seconds)
        if self.server.mode == "malformed":
            content = MALFORMED_CONTENT
        elif self.server.responder is not None:
            content = self.server.responder(body)
        else:
            content = self.server.replies.popleft() if self.server.replies else self.server.default_reply
        self._send(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "test"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


class LLMTestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "script"
        self.replies: deque[str] = deque()
        self.default_reply = json.dumps({"answer": "Je ne sais pas.", "sources": []})
        self.sleep_seconds = 3.0
        self.requests: list[dict] = []
        # Replies chosen from the request body (e.g. by prompt), for callers whose requests come in no fixed order.
        self.responder: Callable[[dict], str] | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


@contextmanager
def running_llm_server():
    server = LLMTestServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
