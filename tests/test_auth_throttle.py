"""Brute force on the sign-ins (issue #16, item 10): the probe sent 60 wrong passwords and never got a 429."""
import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from config import login_throttle

TOKEN_URL = "/api/auth/token/"
LOGIN_URL = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fresh_counters(settings):
    settings.LOGIN_FAILURE_LIMIT = 10
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 50
    settings.LOGIN_LOCKOUT_SECONDS = 900
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def later(monkeypatch):
    """Moves the throttle's clock past the lockout window (no sleeping in tests)."""
    import time

    def move(seconds: float) -> None:
        monkeypatch.setattr(login_throttle, "_now", lambda: time.time() + seconds)

    return move


def test_60_wrong_passwords_on_the_token_api_end_in_429_with_a_reason(api_client, expert, later):
    statuses = [api_client.post(TOKEN_URL, {"username": "expert", "password": f"wrong-{n}"}, format="json").status_code for n in range(60)]
    assert statuses[:10] == [400] * 10
    assert set(statuses[10:]) == {429}
    response = api_client.post(TOKEN_URL, {"username": "expert", "password": "pw-expert"}, format="json")
    assert response.status_code == 429, "the right password is refused too while locked out"
    body = response.json()
    assert body["code"] == "throttled" and "tentatives" in body["reason"]
    assert int(response["Retry-After"]) > 0
    assert not Token.objects.filter(user=expert).exists()

    later(901)
    response = api_client.post(TOKEN_URL, {"username": "expert", "password": "pw-expert"}, format="json")
    assert response.status_code == 200 and response.json()["token"]


def test_60_wrong_passwords_on_the_login_form_are_refused_with_a_clear_message(client, expert, later):
    statuses = [client.post(LOGIN_URL, {"username": "expert", "password": f"wrong-{n}"}).status_code for n in range(60)]
    assert statuses[:10] == [200] * 10  # the form again, "incorrect"
    assert set(statuses[10:]) == {429}
    response = client.post(LOGIN_URL, {"username": "expert", "password": "pw-expert"})
    assert response.status_code == 429
    assert "Trop de tentatives de connexion" in response.content.decode()
    assert "_auth_user_id" not in client.session

    later(901)
    response = client.post(LOGIN_URL, {"username": "expert", "password": "pw-expert"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(expert.pk)


def test_one_address_trying_many_usernames_is_locked_out_too(api_client, expert):
    for n in range(50):
        assert api_client.post(TOKEN_URL, {"username": f"user{n}", "password": "x"}, format="json").status_code == 400
    assert api_client.post(TOKEN_URL, {"username": "expert", "password": "pw-expert"}, format="json").status_code == 429


def test_another_address_and_another_username_are_not_locked_out(api_client, expert, maintainer):
    for n in range(10):
        api_client.post(TOKEN_URL, {"username": "expert", "password": f"wrong-{n}"}, format="json")
    assert api_client.post(TOKEN_URL, {"username": "expert", "password": "pw-expert"}, format="json", REMOTE_ADDR="10.0.0.7").status_code == 200
    assert api_client.post(TOKEN_URL, {"username": "maintainer", "password": "pw-maintainer"}, format="json").status_code == 200


def test_a_success_clears_the_username_counter(api_client, expert):
    for n in range(9):
        api_client.post(TOKEN_URL, {"username": "expert", "password": f"wrong-{n}"}, format="json")
    assert api_client.post(TOKEN_URL, {"username": "expert", "password": "pw-expert"}, format="json").status_code == 200
    for n in range(9):
        assert api_client.post(TOKEN_URL, {"username": "expert", "password": f"again-{n}"}, format="json").status_code == 400


def test_limits_come_from_the_settings(api_client, expert, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    statuses = [api_client.post(TOKEN_URL, {"username": "expert", "password": "no"}, format="json").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    settings.LOGIN_THROTTLE_ENABLED = False
    assert api_client.post(TOKEN_URL, {"username": "expert", "password": "pw-expert"}, format="json").status_code == 200


def test_the_client_address_header_is_used_when_configured(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1", REMOTE_ADDR="10.0.0.1")
    assert login_throttle.client_address(request) == "10.0.0.1"
    settings.LOGIN_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    assert login_throttle.client_address(request) == "203.0.113.9"
