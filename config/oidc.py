"""Single sign-on with an OpenID Connect provider (ProConnect, Keycloak...), on top of mozilla-django-oidc.

Everything comes from settings (themselves from environment variables, see config/settings.py):

* the provider's endpoints are discovered from ``{OIDC_ISSUER}/.well-known/openid-configuration`` on first use
  (not at start-up, so that a provider that is down never stops the site from starting); an explicit
  ``OIDC_OP_*_ENDPOINT`` setting wins over discovery;
* users are matched on one claim (``OIDC_USERNAME_CLAIM``, ``sub`` by default): never on the e-mail address, which
  some providers let users choose, so that nobody can take over an account by claiming its address;
* on every login the name, the e-mail and the roles (``OIDC_ROLES_CLAIM`` mapped through ``OIDC_ROLES_MAP`` onto
  the groups of config/roles.py) are copied from the claims: the provider is the reference for who is what;
* ProConnect's specifics: userinfo answered as a signed JWT (``application/jwt``, verified with the provider's JWKS
  by mozilla-django-oidc), ``usual_name`` for the family name, ``acr_values`` sent with the authorisation request,
  logout through the provider's ``end_session_endpoint`` with ``id_token_hint``.

Local accounts keep working: the model backend stays first, and nothing here runs unless OIDC is configured.
"""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.crypto import get_random_string
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from config.roles import ROLES

logger = logging.getLogger("lexique.oidc")

# Our setting name -> the key of the discovery document that provides it.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_LOGOUT_ENDPOINT": "end_session_endpoint",
}
# A discovery document is re-read after this long, so that a provider's new endpoints are picked up without restart.
DISCOVERY_TTL_SECONDS = 3600

_discovery_cache: dict[str, tuple[float, dict]] = {}
_discovery_lock = threading.Lock()


class OIDCDiscoveryError(ImproperlyConfigured):
    """The provider's discovery document could not be read."""


def oidc_enabled() -> bool:
    """Whether single sign-on is configured: a client id, and an issuer or explicit endpoints."""
    return bool(
        getattr(settings, "OIDC_RP_CLIENT_ID", "")
        and (getattr(settings, "OIDC_ISSUER", "") or getattr(settings, "OIDC_OP_AUTHORIZATION_ENDPOINT", ""))
    )


def provider_name() -> str:
    return getattr(settings, "OIDC_PROVIDER_NAME", "") or "OpenID Connect"


def clear_discovery_cache() -> None:
    with _discovery_lock:
        _discovery_cache.clear()


def discovery_document(*, issuer: str) -> dict:
    """The provider's ``.well-known/openid-configuration``, cached for DISCOVERY_TTL_SECONDS."""
    now = time.monotonic()
    with _discovery_lock:
        cached = _discovery_cache.get(issuer)
        if cached and now - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(
            url, timeout=import_from_settings("OIDC_TIMEOUT", 10), verify=import_from_settings("OIDC_VERIFY_SSL", True),
        )
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise OIDCDiscoveryError(f"Cannot read the OpenID Connect discovery document {url}: {error}") from error
    # OpenID Connect Discovery 1.0 section 4.3: the issuer in the document must be the one we asked for.
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise OIDCDiscoveryError(f"The discovery document of {issuer} names another issuer: {document.get('issuer')!r}")
    with _discovery_lock:
        _discovery_cache[issuer] = (now, document)
    return document


def oidc_setting(name: str, *default):
    """A setting for mozilla-django-oidc, with the provider's endpoints filled in from discovery when not set."""
    value = getattr(settings, name, "")
    if name in DISCOVERED and not value:
        issuer = getattr(settings, "OIDC_ISSUER", "")
        if issuer:
            value = discovery_document(issuer=issuer).get(DISCOVERED[name], "")
        if value:
            return value
        if default:
            return default[0]
        raise ImproperlyConfigured(f"{name} is not set and the provider's discovery document does not give it.")
    return import_from_settings(name, *default)


def _claim(claims: dict, path: str):
    """A claim by name, or by dotted path for nested claims (Keycloak's ``realm_access.roles``)."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def roles_from_claims(claims: dict) -> set[str]:
    """The Lexique roles that the claims give: the roles claim's values through OIDC_ROLES_MAP, plus the default role.

    A value may be a list or a space- or comma-separated string. Without a mapping, values that are role names
    (``expert``, ``maintainer``, ``admin``) map to themselves.
    """
    roles = set()
    claim_name = getattr(settings, "OIDC_ROLES_CLAIM", "")
    mapping = getattr(settings, "OIDC_ROLES_MAP", {}) or {role: role for role in ROLES}
    if claim_name:
        values = _claim(claims, claim_name)
        if isinstance(values, str):
            values = values.replace(",", " ").split()
        for value in values or []:
            role = mapping.get(str(value))
            if role in ROLES:
                roles.add(role)
    default_role = getattr(settings, "OIDC_DEFAULT_ROLE", "")
    if default_role in ROLES:
        roles.add(default_role)
    return roles


class OIDCBackend(OIDCAuthenticationBackend):
    """Creates and updates users from the provider's claims; inert (and free) when OIDC is not configured.

    Django builds every backend for every ``authenticate`` call and for every request of a signed-in user, so the
    settings (and discovery, which may go to the network) are read only when a provider's callback is handled.
    """

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        from django.contrib.auth import get_user_model

        self.UserModel = get_user_model()

    def _load_settings(self) -> None:
        super().__init__()

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce: a password login never reaches the provider.
        if request is None or "nonce" not in kwargs or not oidc_enabled():
            return None
        self._load_settings()
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        # mozilla-django-oidc's get_user ignores is_active: a deactivated user's open session must end too.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        # mozilla-django-oidc does not check these: the token must be ours and come from our provider.
        audience = payload.get("aud")
        if audience is not None:
            audiences = audience if isinstance(audience, list) else [audience]
            if self.OIDC_RP_CLIENT_ID not in audiences:
                raise SuspiciousOperation("The token was issued for another client.")
        issuer = getattr(settings, "OIDC_ISSUER", "")
        if issuer and payload.get("iss") is not None and payload["iss"].rstrip("/") != issuer.rstrip("/"):
            raise SuspiciousOperation("The token was issued by another provider.")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core 5.3.2: the userinfo must be about the subject of the ID token.
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo answer is about another subject than the ID token.")
        return claims

    def username_from_claims(self, claims: dict) -> str:
        claim_name = getattr(settings, "OIDC_USERNAME_CLAIM", "sub") or "sub"
        username = str(claims.get(claim_name) or "").strip()
        max_length = self.UserModel._meta.get_field(self.UserModel.USERNAME_FIELD).max_length
        if not username or len(username) > max_length:
            raise SuspiciousOperation(f"The {claim_name!r} claim is missing or longer than {max_length} characters.")
        return username

    def verify_claims(self, claims):
        try:
            self.username_from_claims(claims)
        except SuspiciousOperation as error:
            logger.warning("OIDC login refused: %s", error)
            return False
        return True

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(**{self.UserModel.USERNAME_FIELD: self.username_from_claims(claims)})

    def create_user(self, claims):
        user = self.UserModel(**{self.UserModel.USERNAME_FIELD: self.username_from_claims(claims)})
        # Signed in through the provider only: no password that could be guessed here.
        user.set_unusable_password()
        user.save()
        logger.info("OIDC: created user %s", user.get_username())
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        user.email = claims.get("email") or user.email
        user.first_name = (claims.get("given_name") or user.first_name)[:150]
        # ProConnect calls the family name "usual_name"; the standard claim is "family_name".
        user.last_name = (claims.get("usual_name") or claims.get("family_name") or user.last_name)[:150]
        user.save()
        if getattr(settings, "OIDC_ROLES_CLAIM", ""):
            wanted = roles_from_claims(claims)
            current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
            for role in current - wanted:
                user.groups.remove(Group.objects.get(name=role))
            for role in wanted - current:
                user.groups.add(Group.objects.get_or_create(name=role)[0])
            user.__dict__.pop("_lexique_rank", None)
        elif not user.groups.filter(name__in=ROLES).exists():
            # No roles claim: roles are given in the admin, and the default role only to someone who has none.
            for role in roles_from_claims(claims):
                user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user


class OIDCLoginView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's authorisation endpoint (with ``acr_values`` when configured)."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        # The parent reads the endpoint here; we read it in get(), after checking that OIDC is configured.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except OIDCDiscoveryError as error:
            logger.error("%s", error)
            return HttpResponseRedirect(resolve_url(self.get_settings("LOGIN_REDIRECT_URL_FAILURE", "/")))
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)

    def get_extra_params(self, request):
        params = dict(super().get_extra_params(request))
        acr_values = getattr(settings, "OIDC_ACR_VALUES", "")
        if acr_values:
            params["acr_values"] = acr_values
        return params


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def get(self, request):
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except (requests.RequestException, OIDCDiscoveryError) as error:
            # The provider is unreachable or refused the code: back to the login page with a message, not a 500.
            logger.error("OIDC callback failed: %s", error)
            return self.login_failure()


def provider_logout_url(request) -> str:
    """The provider's end-session URL for a session that was opened through it, else an empty string."""
    id_token = request.session.get("oidc_id_token")
    if not (id_token and oidc_enabled()):
        return ""
    try:
        endpoint = oidc_setting("OIDC_OP_LOGOUT_ENDPOINT", "")
    except OIDCDiscoveryError as error:
        logger.error("%s", error)
        return ""
    if not endpoint:
        return ""
    params = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL)),
        # ProConnect requires a state on logout too.
        "state": get_random_string(32),
    }
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


class LogoutView(auth_views.LogoutView):
    """Django's logout; a session opened through the provider is also closed there (``id_token_hint``)."""

    def post(self, request, *args, **kwargs):
        provider_url = provider_logout_url(request)
        response = super().post(request, *args, **kwargs)
        if provider_url:
            return HttpResponseRedirect(provider_url)
        return response


def sso_context(request) -> dict:
    """Template context: the provider's name when single sign-on is configured (the login page's button)."""
    return {"sso_provider_name": provider_name() if oidc_enabled() else ""}
