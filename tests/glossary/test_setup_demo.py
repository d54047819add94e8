import io
import json

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from config.roles import ADMIN, EXPERT, MAINTAINER, has_role
from glossary.models import Entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_glossary(tmp_path):
    path = tmp_path / "demo_glossary.jsonl"
    rows = [
        {"term": "CAF", "definition": "Caisse d'allocations familiales", "kind": "acronym", "domain": "Social"},
        {"term": "TVA", "definition": "Taxe sur la valeur ajoutée", "kind": "acronym", "domain": "Fiscalité"},
    ]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def var_dir(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path / "var"
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    return settings.VAR_DIR


def _setup_demo(*args) -> str:
    out = io.StringIO()
    call_command("setup_demo", *args, stdout=out)
    return out.getvalue()


def _printed_passwords(output: str) -> dict[str, str]:
    pairs = [line.strip().split(" / ") for line in output.splitlines() if " / " in line]
    return dict(pairs)


def test_setup_demo_is_idempotent_and_prints_working_credentials(demo_glossary, var_dir):
    first = _setup_demo("--glossary", str(demo_glossary))
    second = _setup_demo("--glossary", str(demo_glossary))

    assert "http://127.0.0.1:8000/" in first
    passwords = _printed_passwords(first)
    assert set(passwords) == {"expert", "maintainer", "admin"}
    # Later runs reuse the generated passwords stored under var/.
    assert _printed_passwords(second) == passwords
    assert f"expert: {passwords['expert']}" in (var_dir / "demo-credentials.txt").read_text()
    assert Entry.objects.count() == 2
    assert set(Entry.objects.values_list("status", flat=True)) == {"validated"}
    assert "already has entries" in second
    assert set(Group.objects.values_list("name", flat=True)) >= {EXPERT, MAINTAINER, ADMIN}
    users = get_user_model().objects
    assert users.count() == 3
    for username, role in (("expert", EXPERT), ("maintainer", MAINTAINER), ("admin", ADMIN)):
        user = authenticate(username=username, password=passwords[username])
        assert user is not None and has_role(user, role)
    assert users.get(username="admin").is_superuser
    assert not has_role(users.get(username="expert"), MAINTAINER)


def test_setup_demo_uses_demo_password_and_continues_without_a_glossary(var_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-secret-1")
    output = _setup_demo("--glossary", str(tmp_path / "absent.jsonl"))

    assert "No demo glossary" in output
    assert _printed_passwords(output) == {"expert": "demo-secret-1", "maintainer": "demo-secret-1", "admin": "demo-secret-1"}
    assert authenticate(username="maintainer", password="demo-secret-1") is not None
    assert not (var_dir / "demo-credentials.txt").exists()
    assert Entry.objects.count() == 0
