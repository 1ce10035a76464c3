"""Access tokens: signed by Nær's own key (embedded sign-in, ``naer token``, client credentials) or by the
region's identity provider, and checked the same way by joserfc — an asymmetric signature (never
``none``, never HMAC: a public key used as an HMAC secret is refused), ``exp``/``nbf``, issuer and
audience.

Nær's key is an EC P-256 key made on first start under the data folder, readable by its owner only
(mode 0600); its public half is served at ``/fhir/.well-known/jwks.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from joserfc.jwt import JWTClaimsRegistry

from naer import clock
from naer.errors import UserError
from naer.settings import Settings, get_settings

ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]
LEEWAY = 30  # seconds of clock difference between issuer and Nær
JWKS_SECONDS = 600  # how long an identity provider's keys are kept before they are fetched again


class InvalidToken(Exception):
    """A token that does not pass; the message is for the log and the audit, not for the client."""


@dataclass(frozen=True)
class Claims:
    subject: str
    issuer: str
    scope: str
    expires: int
    values: dict[str, Any]


_lock = threading.Lock()
_keys: dict[Path, ECKey] = {}


def signing_key(settings: Settings | None = None) -> ECKey:
    """Nær's private key, made (mode 0600) when there is none yet."""
    path = (settings or get_settings()).key_path()
    with _lock:
        if path in _keys:
            return _keys[path]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            key = ECKey.generate_key("P-256", private=True, auto_kid=True)
            try:
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use that one
                pass
            else:
                with os.fdopen(handle, "w") as out:
                    json.dump(key.as_dict(private=True), out)
        try:
            data = json.loads(path.read_text())
            key = ECKey.import_key(data)
        except (OSError, ValueError, JoseError) as error:
            raise UserError(f"cannot read the signing key {path}: {error}") from None
        if not key.is_private:
            raise UserError(f"{path} holds no private key")
        _keys[path] = key
        return key


def public_keys(settings: Settings | None = None) -> dict[str, Any]:
    """The JWKS of Nær's own key (public half only)."""
    key = signing_key(settings)
    public = key.as_dict(private=False)
    public.update({"use": "sig", "alg": "ES256"})
    return {"keys": [public]}


def secret(purpose: str) -> bytes:
    """A secret derived from the signing key for one purpose (CSRF tokens), so there is one key to keep."""
    private = json.dumps(signing_key().as_dict(private=True), sort_keys=True).encode()
    return hmac.new(private, purpose.encode(), hashlib.sha256).digest()


def issue(subject: str, scope: str, minutes: int | None = None, **extra: Any) -> str:
    """A token Nær signs for ``subject`` (an account id)."""
    settings = get_settings()
    key = signing_key(settings)
    now = int(clock.now().timestamp())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + 60 * (minutes or settings.token_minutes),
        "jti": uuid.uuid4().hex,
        "scope": scope,
        **extra,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["ES256"])


_remote: dict[str, tuple[float, KeySet]] = {}


def _provider_keys(source: str) -> KeySet:
    """The identity provider's JWKS from a URL (kept for JWKS_SECONDS) or a file."""
    cached = _remote.get(source)
    if cached and time.monotonic() - cached[0] < JWKS_SECONDS:
        return cached[1]
    try:
        if source.startswith(("https://", "http://")):
            with urllib.request.urlopen(source, timeout=5) as answer:
                data = json.loads(answer.read(1_000_000))
        else:
            data = json.loads(Path(source).read_text())
        keys = KeySet.import_key_set(data)
    except (OSError, ValueError, JoseError) as error:
        raise InvalidToken(f"cannot read the identity provider's keys from {source}: {error}") from None
    _remote[source] = (time.monotonic(), keys)
    return keys


def _unverified_issuer(token: str) -> str | None:
    import base64

    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    value = data.get("iss") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


_passed: dict[tuple[Any, ...], Claims] = {}
_passed_lock = threading.Lock()


def verify(token: str) -> Claims:
    """The claims of a token that passes every check, else InvalidToken. A token that passed is kept
    (with the keys it passed against) until it expires, so a client's hundredth request does not check
    the same signature again; its times are checked again at every use."""
    settings = get_settings()
    key = (token, settings.key_path(), settings.oidc_issuer, settings.oidc_jwks, settings.issuer,
           settings.audience, settings.oidc_audience)  # fmt: skip
    kept = _passed.get(key)
    now = int(clock.now().timestamp())
    if kept is not None:
        nbf = kept.values.get("nbf")
        if kept.expires + LEEWAY >= now and (not isinstance(nbf, int) or nbf - LEEWAY <= now):
            return kept
    claims = _verify(token, settings)
    with _passed_lock:
        if len(_passed) > 4096:
            _passed.clear()
        _passed[key] = claims
    return claims


def _verify(token: str, settings: Settings) -> Claims:
    if len(token) > 16_384 or token.count(".") != 2:
        raise InvalidToken("not a signed JWT (three parts)")
    issuer = _unverified_issuer(token)  # which key set to try; the signature check decides
    if settings.oidc_issuer and issuer == settings.oidc_issuer and settings.oidc_jwks:
        keys: Any = _provider_keys(settings.oidc_jwks)
        audience = settings.oidc_audience or settings.audience
    else:
        keys = KeySet([signing_key(settings)])
        issuer, audience = settings.issuer, settings.audience
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidToken(f"signature: {type(error).__name__}: {error}") from None
    registry = JWTClaimsRegistry(
        now=int(clock.now().timestamp()),
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        exp={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidToken(f"claims: {type(error).__name__}: {error}") from None
    claims = decoded.claims
    subject, scope = claims.get("sub"), claims.get("scope", "")
    if not isinstance(subject, str) or not isinstance(scope, str):
        raise InvalidToken("sub and scope must be strings")
    expires = claims.get("exp")
    return Claims(subject, str(issuer), scope, int(expires) if isinstance(expires, int) else 0, dict(claims))
