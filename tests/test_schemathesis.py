"""The API against its own OpenAPI schema: random input never gives a server error, answers match the schema.

Two layers:
* in process (fast): every API operation of the schema gets random JSON bodies and query strings from
  hypothesis, with a maintainer's token; nothing answers 5xx;
* against a running server (slow): ``schemathesis run`` on a real ``manage.py runserver`` process sharing the test
  database, with checks ``not_a_server_error`` and ``response_schema_conformance``.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings, strategies as st
from rest_framework.authtoken.models import Token

from tests.factories import DomainFactory, EntryFactory
from tests.live import ROOT, child_database_url, wait_for

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = sorted(
    (path, method.upper())
    for path, item in SCHEMA["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
)
# Replaced in paths by existing ids (or one that matches nothing).
PATH_IDS = st.sampled_from(["1", "2", "999999", "0"])
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**40), max_value=2**40), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=10,
)


def _field_names(path: str, method: str) -> list[str]:
    """The property and parameter names the schema declares for the operation: random values for them hit validation."""
    operation = SCHEMA["paths"][path][method.lower()]
    names = [parameter["name"] for parameter in operation.get("parameters", []) if parameter.get("in") == "query"]
    for media in operation.get("requestBody", {}).get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        component = SCHEMA["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
        names += list(component.get("properties", {}))
    return names or ["q"]


def _payloads(path: str, method: str):
    names = _field_names(path, method)
    known = st.dictionaries(st.sampled_from(names), JSON_VALUE, max_size=len(names))
    return st.one_of(known, JSON_VALUE)


@pytest.fixture
def maintainer_token_client(maintainer):
    from rest_framework.test import APIClient

    DomainFactory(name="Fiscalité")
    for term in ("TVA", "CAF"):
        EntryFactory(term=term)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=maintainer).key}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("path,method", OPERATIONS, ids=lambda value: str(value))
def test_random_json_never_gives_a_server_error(maintainer_token_client, monkeypatch, path, method):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "allow_request", lambda self, request, view: True)

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(ids=st.lists(PATH_IDS, min_size=3, max_size=3), payload=_payloads(path, method))
    def check(ids, payload):
        values = iter(ids)
        url = re.sub(r"\{[^}]+\}", lambda _match: next(values), path)
        if method == "GET":
            params = {key: json.dumps(value) if not isinstance(value, str) else value for key, value in payload.items()} if isinstance(payload, dict) else {"q": json.dumps(payload)}
            response = maintainer_token_client.get(url, params)
        else:
            response = maintainer_token_client.generic(method, url, json.dumps(payload), content_type="application/json")
        assert response.status_code < 500, f"{method} {url} {payload!r}: {response.status_code}"
        if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
            assert "reason" in response.json(), f"{method} {url}: error without a reason"

    check()


# ---- schemathesis against a running server ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 401: the server is up
    except OSError:
        return False


@pytest.fixture
def live_server_process(transactional_db, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "ARTIFACTS": django_settings.STORAGES["artifacts"]["OPTIONS"]["location"],
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LEXIQUE_VAR_DIR": str(tmp_path / "var"),
        "THROTTLE_SEARCH": "100000/min", "THROTTLE_ANSWER": "100000/min", "THROTTLE_RETRAIN": "100000/min",
        "LOG_LEVEL": "WARNING",
    }
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--nothreading"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _answers(f"{base}/api/schema/"), timeout=120, message="the server to answer")
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        yield base, tmp_path / "server.log"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(live_server_process, expert, tmp_path):
    base, server_log = live_server_process
    domain = DomainFactory(name="Fiscalité")
    EntryFactory(term="TVA", definition="Taxe sur la valeur ajoutée", domain=domain)
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales", domain=domain)
    token = Token.objects.create(user=expert).key
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/schema/?format=json",
        "--header", f"Authorization: Token {token}",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--max-examples", "8", "--phases", "examples,fuzzing", "--workers", "1", "--seed", "7",
        "--generation-database", "none", "--request-timeout", "60", "--no-color",
        # Reading the whole API, and writing the glossary, flags and answers; imports and the maintainers'
        # long jobs (retraining, evaluations, promotions) are out of this bounded run.
        "--exclude-path-regex", "^/api/(imports|training-runs|evaluations|model-versions/.*/promote|model-versions/rollback)",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:] + "\n--- server log ---\n" + Path(server_log).read_text()[-3000:]
    assert "passed" in output.lower()
