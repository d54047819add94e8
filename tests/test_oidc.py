"""Single sign-on end to end, against a real OpenID Connect provider that the test starts (tests/oidc_provider.py).

The browser is Django's test client; the redirects to and from the provider are followed with real HTTP requests,
and the application's back-channel calls (discovery, token, userinfo, JWKS) go over HTTP to the provider too.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import get_user_model
from django.urls import reverse

from config.oidc import clear_discovery_cache
from config.roles import EXPERT, MAINTAINER, assign_role
from tests.oidc_provider import OIDCProvider

pytestmark = pytest.mark.django_db

MAINTAINER_PAGE = "/training/config/"  # the training configuration: maintainers only


@pytest.fixture
def provider(settings):
    provider = OIDCProvider().start()
    settings.OIDC_PROVIDER_NAME = "ProConnect"
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_RP_CLIENT_ID = provider.client_id
    settings.OIDC_RP_CLIENT_SECRET = provider.client_secret
    settings.OIDC_ROLES_CLAIM = "groups"
    settings.OIDC_ROLES_MAP = {"lexique-maintainers": MAINTAINER, "lexique-experts": EXPERT}
    settings.OIDC_ACR_VALUES = "eidas1"
    clear_discovery_cache()
    yield provider
    provider.stop()
    clear_discovery_cache()


def sso_login(client, provider, next_url=MAINTAINER_PAGE):
    """Click "Se connecter avec ...", let the provider answer, come back: the callback's response."""
    start = client.get(reverse("oidc_authentication_init"), {"next": next_url})
    assert start.status_code == 302
    assert start["Location"].startswith(provider.issuer + "/authorize?")
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlparse(at_provider.headers["Location"])
    assert (back.netloc, back.path) == ("testserver", reverse("oidc_authentication_callback"))
    return client.get(f"{back.path}?{back.query}")


def test_login_creates_the_user_with_the_role_from_the_claims_then_logout_goes_through_the_provider(client, provider):
    provider.claims = {
        "sub": "a1b2c3", "email": "marie.curie@finances.gouv.fr", "given_name": "Marie", "usual_name": "Curie",
        "groups": ["agents", "lexique-maintainers"],
    }
    assert b"Se connecter avec ProConnect" in client.get(reverse("login")).content

    callback = sso_login(client, provider)

    assert callback.status_code == 302 and callback["Location"] == MAINTAINER_PAGE
    user = get_user_model().objects.get(username="a1b2c3")
    assert (user.email, user.first_name, user.last_name) == ("marie.curie@finances.gouv.fr", "Marie", "Curie")
    assert set(user.groups.values_list("name", flat=True)) == {MAINTAINER}
    assert not user.has_usable_password()
    # What the application asked the provider for: scopes, ProConnect's acr_values, a nonce, PKCE.
    authorize = provider.authorize_requests[-1]
    assert authorize["scope"] == "openid email profile" and authorize["acr_values"] == "eidas1"
    assert authorize["nonce"] and authorize["code_challenge_method"] == "S256"
    assert client.get(MAINTAINER_PAGE).status_code == 200

    logout = client.post(reverse("logout"))

    assert logout.status_code == 302
    end_session = urlparse(logout["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == f"{provider.issuer}/end_session"
    query = {key: values[0] for key, values in parse_qs(end_session.query).items()}
    assert query["id_token_hint"] in provider.issued_id_tokens
    assert query["post_logout_redirect_uri"] == "http://testserver" + reverse("login")
    back = requests.get(logout["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302 and back.headers["Location"].startswith("http://testserver" + reverse("login"))
    assert provider.end_session_requests[-1]["id_token_hint"] == query["id_token_hint"]
    # Signed out here too.
    assert client.get(MAINTAINER_PAGE)["Location"].startswith(reverse("login"))


def test_proconnect_userinfo_as_a_signed_jwt(client, provider):
    provider.userinfo_as_jwt = True
    provider.claims = {"sub": "pc-42", "email": "jean@interieur.gouv.fr", "given_name": "Jean", "usual_name": "Moulin", "groups": "lexique-experts"}

    callback = sso_login(client, provider, next_url="/workbench/")

    assert callback["Location"] == "/workbench/"
    user = get_user_model().objects.get(username="pc-42")
    assert (user.first_name, user.last_name) == ("Jean", "Moulin")
    assert set(user.groups.values_list("name", flat=True)) == {EXPERT}


def test_a_userinfo_jwt_with_a_bad_signature_is_refused(client, provider):
    provider.userinfo_as_jwt = True
    provider.userinfo_signed_with_unknown_key = True
    provider.claims = {"sub": "forged", "groups": ["lexique-maintainers"]}

    callback = sso_login(client, provider)

    assert callback.status_code == 302 and callback["Location"] == "/accounts/login/?sso=failed"
    assert not get_user_model().objects.filter(username="forged").exists()
    assert client.get(MAINTAINER_PAGE)["Location"].startswith(reverse("login"))
    assert "La connexion avec ProConnect a échoué." in client.get(callback["Location"]).content.decode()


def test_a_wrong_role_claim_gives_no_maintainer_access(client, provider):
    provider.claims = {"sub": "u-7", "groups": ["maintainer-of-another-app", "lexique-experts"]}

    sso_login(client, provider)

    user = get_user_model().objects.get(username="u-7")
    assert set(user.groups.values_list("name", flat=True)) == {EXPERT}
    assert client.get(MAINTAINER_PAGE).status_code == 403


def test_roles_follow_the_provider_on_every_login(client, provider):
    former = get_user_model().objects.create_user(username="u-8")
    assign_role(former, MAINTAINER)
    provider.claims = {"sub": "u-8", "groups": []}

    sso_login(client, provider)

    assert not former.groups.exists()
    assert client.get(MAINTAINER_PAGE).status_code == 403


def test_a_deactivated_user_loses_an_open_sso_session(client, provider):
    provider.claims = {"sub": "leaver", "groups": ["lexique-experts"]}
    sso_login(client, provider)
    assert client.get(reverse("glossary:entry-list")).status_code == 200

    get_user_model().objects.filter(username="leaver").update(is_active=False)

    assert client.get(reverse("glossary:entry-list"))["Location"].startswith(reverse("login"))


def test_keycloak_nested_roles_claim(client, provider, settings):
    settings.OIDC_ROLES_CLAIM = "realm_access.roles"
    settings.OIDC_ROLES_MAP = {}
    settings.OIDC_ACR_VALUES = ""
    provider.claims = {"sub": "kc-1", "family_name": "Dupont", "realm_access": {"roles": ["offline_access", "maintainer"]}}

    sso_login(client, provider)

    user = get_user_model().objects.get(username="kc-1")
    assert user.last_name == "Dupont" and set(user.groups.values_list("name", flat=True)) == {MAINTAINER}
    assert "acr_values" not in provider.authorize_requests[-1]


def test_a_replayed_callback_is_refused(client, provider):
    """The state is used once: the same provider answer cannot open a second session."""
    start = client.get(reverse("oidc_authentication_init"))
    back = urlparse(requests.get(start["Location"], allow_redirects=False, timeout=10).headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    client.logout()
    replay = client.get(f"{back.path}?{back.query}")
    assert replay.status_code == 302 and replay["Location"] == "/accounts/login/?sso=failed"


def test_a_provider_that_goes_down_during_login_sends_back_to_the_login_page(client, provider):
    start = client.get(reverse("oidc_authentication_init"))
    back = urlparse(requests.get(start["Location"], allow_redirects=False, timeout=10).headers["Location"])
    provider.stop()

    callback = client.get(f"{back.path}?{back.query}")

    assert callback.status_code == 302 and callback["Location"] == "/accounts/login/?sso=failed"
    assert not get_user_model().objects.exists()


def test_local_login_still_works_with_a_provider_configured(client, provider):
    get_user_model().objects.create_user(username="local", password="pw-local-123")
    response = client.post(reverse("login"), {"username": "local", "password": "pw-local-123"})
    assert response.status_code == 302
    assert client.get(reverse("glossary:entry-list")).status_code == 200
    # A local session signs out here only: nothing to close at the provider.
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    assert provider.token_requests == [] and provider.end_session_requests == []


def test_without_a_provider_local_login_only(client, db):
    get_user_model().objects.create_user(username="local", password="pw-local-123")
    page = client.get(reverse("login")).content.decode()
    assert "Se connecter avec" not in page
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.post(reverse("login"), {"username": "local", "password": "pw-local-123"}).status_code == 302
    assert client.get(reverse("glossary:entry-list")).status_code == 200
