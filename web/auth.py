"""Bearer JWT: who calls (`sub`) for which tenant (`tid`); never from query or body.

Two kinds of token: HS256 with the shared `JWT_SECRET` (development, tests, `token`),
and RS256/ES256 from the platform's identity provider, verified with the key its
JWKS names by the token's `kid`, with issuer and audience checks. The token's `alg`
picks the kind; `none`, and an HMAC token under a provider's key id, are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from core.settings import Settings
from web.jwks import JwksError, JwksKeys

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AuthError",
    "Principal",
    "TokenVerifier",
    "authenticate",
    "issue_token",
    "token_verifier",
]

#: What a provider's token may be signed with (an RSA or a P-256 key of its JWKS).
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")
_REQUIRED_CLAIMS = ["exp", "sub", "tid"]


class AuthError(Exception):
    """The request carries no usable token (401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a user of a tenant."""

    tenant_id: str
    user_id: str


def authenticate(
    authorization: str | None, *, secret: str, algorithms: list[str], leeway: float
) -> Principal:
    """The principal of an `Authorization: Bearer <JWT>` header signed with `secret`;
    `AuthError` otherwise."""
    token = bearer_token(authorization)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=algorithms,
            leeway=leeway,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as e:
        message = f"invalid token: {e}"
        raise AuthError(message) from e
    return principal_of(claims)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <JWT>` header; `AuthError` otherwise."""
    if not authorization:
        message = "missing Authorization header"
        raise AuthError(message)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        message = "the Authorization header is not a Bearer token"
        raise AuthError(message)
    return token.strip()


def principal_of(claims: dict[str, object]) -> Principal:
    """The tenant and user a verified token names."""
    tenant, user = claims.get("tid"), claims.get("sub")
    if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
        message = "the token must name a tenant (tid) and a user (sub)"
        raise AuthError(message)
    return Principal(tenant_id=tenant, user_id=user)


class TokenVerifier:
    """Verifies API tokens: HS256 with the shared secret, RS256/ES256 through a JWKS."""

    def __init__(
        self,
        *,
        secret: str | None,
        algorithms: list[str],
        leeway: float,
        jwks: JwksKeys | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._secret = secret
        self._algorithms = [a for a in algorithms if a != "none"]
        self._leeway = leeway
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience

    async def principal(self, authorization: str | None) -> Principal:
        """The caller of a request with this `Authorization` header; `AuthError` otherwise."""
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            message = f"invalid token: {e}"
            raise AuthError(message) from e
        algorithm = header.get("alg")
        if algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            return await self._provider_token(self._jwks, token, algorithm, header.get("kid"))
        # `JWT_ALGORITHM` with `JWT_SECRET`: HS256 by default (a deployment that set RS256
        # and a PEM public key as the secret keeps working without a JWKS).
        if algorithm in self._algorithms and self._secret is not None:
            return authenticate(
                authorization, secret=self._secret, algorithms=self._algorithms, leeway=self._leeway
            )
        message = f"invalid token: algorithm {algorithm!r} is not accepted"
        raise AuthError(message)

    async def _provider_token(
        self, jwks: JwksKeys, token: str, algorithm: str, kid: object
    ) -> Principal:
        if not isinstance(kid, str) or not kid:
            message = "invalid token: no key id (kid)"
            raise AuthError(message)
        try:
            key = await jwks.key(kid)
        except JwksError as e:
            message = f"invalid token: {e}"
            raise AuthError(message) from e
        if key.algorithm_name != algorithm:
            message = f"invalid token: key {kid!r} is for {key.algorithm_name}, not {algorithm}"
            raise AuthError(message)
        require = [
            *_REQUIRED_CLAIMS,
            *(["iss"] if self._issuer else []),
            *(["aud"] if self._audience else []),
        ]
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                leeway=self._leeway,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": require, "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as e:
            message = f"invalid token: {e}"
            raise AuthError(message) from e
        return principal_of(claims)


def issue_token(
    *, secret: str, tenant_id: str, user_id: str, ttl: timedelta, algorithm: str = "HS256"
) -> str:
    """A signed token for a tenant and user (development and tests)."""
    now = datetime.now(UTC)
    claims = {"tid": tenant_id, "sub": user_id, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=algorithm)


def token_verifier(settings: Settings) -> TokenVerifier:
    """The verifier the settings describe (`JWT_*`)."""
    jwks = None
    if settings.JWT_JWKS_URL:
        jwks = JwksKeys(
            settings.JWT_JWKS_URL,
            ttl=settings.JWT_JWKS_TTL,
            min_refresh=settings.JWT_JWKS_MIN_REFRESH,
        )
    return TokenVerifier(
        secret=settings.JWT_SECRET.get_secret_value() if settings.JWT_SECRET_ENABLED else None,
        algorithms=[settings.JWT_ALGORITHM],
        leeway=settings.JWT_LEEWAY,
        jwks=jwks,
        issuer=settings.JWT_ISSUER,
        audience=settings.JWT_AUDIENCE,
    )
