"""The API's token authentication remembers a token's user for API_TOKEN_CACHE_SECONDS per process
(config/authentication.py): what it remembers must never let a revoked token or a deactivated user in."""
import pytest
from django.db import connection
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from config.authentication import CachedTokenAuthentication

PROBE = "/api/flags"  # any API read: 200 signed in, 401 otherwise


@pytest.fixture
def token(reader):
    return Token.objects.create(user=reader)


@pytest.fixture
def remembered(settings):
    settings.API_TOKEN_CACHE_SECONDS = 3600  # longer than any test: only a revocation can make it read again
    return settings


def _status(api_client, key: str) -> int:
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api_client.get(PROBE).status_code


def test_a_remembered_token_is_not_read_again(remembered, token, django_assert_num_queries):
    auth = CachedTokenAuthentication()
    user, first = auth.authenticate_credentials(token.key)
    with django_assert_num_queries(0):
        again, second = auth.authenticate_credentials(token.key)
    assert again == user and again is not user and second.key == first.key == token.key  # copies per request


def test_a_revoked_token_is_refused_at_once(api_client, remembered, token):
    assert _status(api_client, token.key) == 200
    token.delete()
    assert _status(api_client, token.key) == 401


def test_a_token_revoked_with_its_user_or_by_a_queryset_is_refused_at_once(api_client, remembered, token, reader):
    assert _status(api_client, token.key) == 200
    Token.objects.filter(user=reader).delete()  # the admin's bulk deletion sends the signals too
    assert _status(api_client, token.key) == 401
    other = Token.objects.create(user=reader)
    assert _status(api_client, other.key) == 200
    reader.delete()
    assert _status(api_client, other.key) == 401


def test_a_deactivated_user_is_refused_at_once(api_client, remembered, token, reader):
    assert _status(api_client, token.key) == 200
    reader.is_active = False
    reader.save()
    response = api_client.get(PROBE)
    assert response.status_code == 401
    with pytest.raises(exceptions.AuthenticationFailed, match="inacti"):
        CachedTokenAuthentication().authenticate_credentials(token.key)


def test_another_process_revoking_a_token_is_seen_within_the_delay(api_client, remembered, token):
    assert _status(api_client, token.key) == 200
    with connection.cursor() as cursor:  # as another process would: no signal reaches this one
        cursor.execute("DELETE FROM authtoken_token WHERE key = %s", [token.key])
    assert _status(api_client, token.key) == 200  # still remembered, for at most API_TOKEN_CACHE_SECONDS
    remembered.API_TOKEN_CACHE_SECONDS = 0  # the delay has passed
    assert _status(api_client, token.key) == 401


def test_unknown_tokens_are_refused_every_time(api_client, remembered, token, django_assert_num_queries):
    for _ in range(2):
        assert _status(api_client, "0" * 40) == 401
    with django_assert_num_queries(1), pytest.raises(exceptions.AuthenticationFailed, match="."):
        CachedTokenAuthentication().authenticate_credentials("0" * 40)
