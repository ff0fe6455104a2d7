"""Provider tokens (RS256/ES256) verified through a local JWKS server, with key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from web.auth import AuthError, Principal, TokenVerifier, issue_token
from web.jwks import JwksKeys

ISSUER = "https://login.example.test/tenant-1/"
AUDIENCE = "api://integration-processors"
SECRET = "dev-secret-dev-secret-dev-secret-dev"


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(kid: str, key: Any, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": alg}


def token(kid: str | None, key: Any, alg: str = "RS256", **claims: Any) -> str:
    now = datetime.now(UTC)
    body = {
        "tid": "t-1",
        "sub": "u-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now + timedelta(minutes=5),
        **claims,
    }
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


@dataclass
class Jwks:
    """A JWKS endpoint whose key list a test changes."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    url: str = ""
    down: bool = False


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    served = Jwks(
        keys=[public_jwk("rsa-1", rsa_key("1"), "RS256"), public_jwk("ec-1", ec_key("1"), "ES256")]
    )

    async def document(request: web.Request) -> web.Response:
        served.requests += 1
        if served.down:
            return web.json_response({"error": "down"}, status=503)
        return web.json_response({"keys": served.keys})

    app = web.Application()
    app.router.add_get("/keys", document)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served.url = f"http://127.0.0.1:{port}/keys"
    yield served
    await runner.cleanup()


def verifier(
    jwks: Jwks, *, min_refresh: float = 0.0, secret: str | None = SECRET, **kw: Any
) -> TokenVerifier:
    return TokenVerifier(
        secret=secret,
        algorithms=["HS256"],
        leeway=0,
        jwks=JwksKeys(jwks.url, min_refresh=min_refresh, **kw),
        issuer=ISSUER,
        audience=AUDIENCE,
    )


async def check(v: TokenVerifier, raw: str) -> Principal:
    return await v.principal(f"Bearer {raw}")


async def test_rs256_and_es256_tokens_of_the_provider_are_accepted(jwks: Jwks) -> None:
    v = verifier(jwks)
    assert await check(v, token("rsa-1", rsa_key("1"))) == Principal("t-1", "u-1")
    assert await check(v, token("ec-1", ec_key("1"), "ES256")) == Principal("t-1", "u-1")
    assert jwks.requests == 1  # both from one cached document
    dev = issue_token(secret=SECRET, tenant_id="t-dev", user_id="me", ttl=timedelta(minutes=1))
    assert await check(v, dev) == Principal("t-dev", "me")  # the development secret still works


async def test_rotation_old_kid_stays_valid_new_kid_is_fetched_unknown_is_refused(
    jwks: Jwks,
) -> None:
    v = verifier(jwks, min_refresh=0.3)
    assert (await check(v, token("rsa-1", rsa_key("1")))).user_id == "u-1"
    jwks.keys = [public_jwk("rsa-2", rsa_key("2"), "RS256"), *jwks.keys]  # rotation: new key first
    await asyncio.sleep(0.3)
    assert (
        await check(v, token("rsa-2", rsa_key("2")))
    ).user_id == "u-1"  # refreshed on unknown kid
    assert jwks.requests == 2
    assert (
        await check(v, token("rsa-1", rsa_key("1")))
    ).user_id == "u-1"  # the old kid, still listed

    await asyncio.sleep(0.3)
    with pytest.raises(AuthError, match="no signing key 'made-up'"):
        await check(v, token("made-up", rsa_key("1")))
    for _ in range(5):  # more unknown kids within min_refresh: no more fetches
        with pytest.raises(AuthError):
            await check(v, token("made-up-too", rsa_key("1")))
    assert jwks.requests == 3

    jwks.keys = [public_jwk("rsa-2", rsa_key("2"), "RS256")]  # the old key withdrawn
    await asyncio.sleep(0.3)
    with pytest.raises(AuthError):
        await check(v, token("rsa-3", rsa_key("3")))  # an unknown kid refreshes; rsa-1 is gone
    with pytest.raises(AuthError, match="no signing key 'rsa-1'"):
        await check(v, token("rsa-1", rsa_key("1")))


async def test_concurrent_unknown_kids_fetch_once_and_a_down_provider_keeps_known_keys(
    jwks: Jwks,
) -> None:
    v = verifier(jwks, min_refresh=60)
    good = token("rsa-1", rsa_key("1"))
    results = await asyncio.gather(*(check(v, good) for _ in range(20)))
    assert len(results) == 20 and jwks.requests == 1
    cached = verifier(jwks, min_refresh=0, ttl=0.05)
    assert await check(cached, good)
    jwks.down = True
    await asyncio.sleep(0.06)
    assert await check(cached, good)  # stale: a refresh was tried, failed, the keys stay
    assert jwks.requests == 3
    with pytest.raises(AuthError, match="no signing key 'rsa-2'"):
        await check(cached, token("rsa-2", rsa_key("2")))


async def test_the_key_cache_is_bounded(jwks: Jwks) -> None:
    jwks.keys = [public_jwk(f"k{i}", rsa_key("1"), "RS256") for i in range(50)]
    keys = JwksKeys(jwks.url, max_keys=8)
    await keys.key("k0")
    assert keys.kids == [f"k{i}" for i in range(8)]
    with pytest.raises(Exception, match="no signing key 'k9'"):
        await keys.key("k9")


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"iss": "https://evil.example.test/"}, "issuer"),
        ({"aud": "api://someone-else"}, "(?i)audience"),
        ({"aud": None}, "aud"),
        ({"exp": datetime.now(UTC) - timedelta(minutes=1)}, "expired"),
    ],
)
async def test_wrong_issuer_audience_or_expiry_is_refused(
    jwks: Jwks, claims: dict, problem: str
) -> None:
    raw = token("rsa-1", rsa_key("1"), **{k: v for k, v in claims.items() if v is not None})
    if claims.get("aud", "") is None:
        body = jwt.decode(raw, options={"verify_signature": False})
        del body["aud"]
        raw = jwt.encode(body, rsa_key("1"), algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(AuthError, match=problem):
        await check(verifier(jwks), raw)


async def test_algorithm_confusion_is_refused(jwks: Jwks) -> None:
    v = verifier(jwks)
    claims = {
        "tid": "t-1",
        "sub": "u-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"})
    with pytest.raises(AuthError, match="'none' is not accepted"):
        await check(v, unsigned)

    # HS256 signed with the provider's public key (which anyone can fetch) as the secret.
    pem = (
        rsa_key("1")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    payload = b64({**claims, "exp": int(claims["exp"].timestamp())})
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    confused = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(AuthError, match="Signature verification failed"):
        await check(v, confused)  # judged as an HS256 token: only JWT_SECRET verifies those
    with pytest.raises(AuthError, match="'HS256' is not accepted"):
        await check(verifier(jwks, secret=None), confused)  # production: no secret tokens at all

    with pytest.raises(AuthError, match="Signature verification failed"):
        await check(v, token("rsa-1", rsa_key("2")))  # a known kid, signed by another key
    # An ES256 header on a kid that names an RSA key.
    with pytest.raises(AuthError, match="is for RS256, not ES256"):
        await check(v, token("rsa-1", ec_key("1"), "ES256"))
    # A provider token when no JWKS is configured: JWT_ALGORITHM (HS256) decides.
    with pytest.raises(AuthError, match="'RS256' is not accepted"):
        await check(
            TokenVerifier(secret=SECRET, algorithms=["HS256"], leeway=0),
            token("rsa-1", rsa_key("1")),
        )
