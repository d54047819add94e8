"""A tiny OpenID Connect provider for the tests: a threaded HTTP server on 127.0.0.1, started by the test itself.

It serves discovery, JWKS (an RSA key generated at start), authorize (no login form: it redirects straight back with
a code for the claims the test set), token (a signed ID token carrying the nonce; PKCE checked), userinfo (JSON, or a
signed JWT as ProConnect answers, optionally signed with a key that is not in the JWKS) and end_session. It records
what it was sent, so that tests can check the requests the application made.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class OIDCProvider:
    client_id: str = "lexique"
    client_secret: str = "s3cret"
    # Claims of the next user to "log in" (sub is required).
    claims: dict = field(default_factory=lambda: {"sub": "agent-1", "email": "agent@example.gouv.fr"})
    userinfo_as_jwt: bool = False
    userinfo_signed_with_unknown_key: bool = False
    kid: str = "test-key-1"

    def __post_init__(self):
        self.key = _rsa_key()
        self.other_key = _rsa_key()
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.issued_id_tokens: set[str] = set()
        self.authorize_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self.end_session_requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "OIDCProvider":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- tokens ----------------------------------------------------------------------------------------------

    def sign(self, payload: dict, *, key=None) -> str:
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/end_session",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict:
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    # ---- HTTP ------------------------------------------------------------------------------------------------

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def _send(self, status: int, body: str | bytes = b"", content_type: str = "application/json", headers=None):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status: int, payload: dict):
                self._send(status, json.dumps(payload))

            def _redirect(self, location: str):
                self._send(302, b"", "text/plain", {"Location": location})

            def do_GET(self):
                url = urlparse(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, provider.discovery())
                if url.path == "/jwks":
                    return self._json(200, provider.jwks())
                if url.path == "/authorize":
                    return self._authorize(query)
                if url.path == "/userinfo":
                    return self._userinfo()
                if url.path == "/end_session":
                    provider.end_session_requests.append(query)
                    if query.get("id_token_hint") not in provider.issued_id_tokens:
                        return self._json(400, {"error": "invalid id_token_hint"})
                    target = query.get("post_logout_redirect_uri")
                    if target:
                        return self._redirect(target + ("?" + urlencode({"state": query["state"]}) if "state" in query else ""))
                    return self._send(200, b"logged out", "text/plain")
                return self._json(404, {"error": "not found"})

            def do_POST(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path == "/token":
                    return self._token(form)
                return self._json(404, {"error": "not found"})

            def _authorize(self, query: dict):
                provider.authorize_requests.append(query)
                if query.get("client_id") != provider.client_id or query.get("response_type") != "code":
                    return self._json(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {
                    "nonce": query.get("nonce"),
                    "redirect_uri": query["redirect_uri"],
                    "code_challenge": query.get("code_challenge"),
                    "claims": dict(provider.claims),
                    "acr": query.get("acr_values", ""),
                }
                self._redirect(query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]}))

            def _token(self, form: dict):
                provider.token_requests.append(form)
                grant = provider.codes.pop(form.get("code", ""), None)
                if (
                    grant is None
                    or form.get("client_id") != provider.client_id
                    or form.get("client_secret") != provider.client_secret
                    or form.get("redirect_uri") != grant["redirect_uri"]
                ):
                    return self._json(400, {"error": "invalid_grant"})
                if grant["code_challenge"]:
                    verifier = form.get("code_verifier", "")
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                    if challenge != grant["code_challenge"]:
                        return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                now = int(time.time())
                id_token = provider.sign({
                    "iss": provider.issuer, "aud": provider.client_id, "sub": grant["claims"]["sub"],
                    "iat": now, "exp": now + 300, "nonce": grant["nonce"], "acr": grant["acr"],
                })
                provider.issued_id_tokens.add(id_token)
                access_token = secrets.token_urlsafe(16)
                provider.access_tokens[access_token] = grant["claims"]
                self._json(200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

            def _userinfo(self):
                header = self.headers.get("Authorization", "")
                claims = provider.access_tokens.get(header.removeprefix("Bearer "))
                if claims is None:
                    return self._json(401, {"error": "invalid_token"})
                if not provider.userinfo_as_jwt:
                    return self._json(200, claims)
                key = provider.other_key if provider.userinfo_signed_with_unknown_key else provider.key
                now = int(time.time())
                token = provider.sign({**claims, "iss": provider.issuer, "aud": provider.client_id, "iat": now, "exp": now + 300}, key=key)
                self._send(200, token, "application/jwt; charset=utf-8")

        return Handler
