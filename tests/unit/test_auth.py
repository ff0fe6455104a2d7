from datetime import timedelta

import jwt
import pytest

from web.auth import AuthError, authenticate, issue_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def check(header: str | None):
    return authenticate(header, secret=SECRET, algorithms=["HS256"], leeway=5)


def test_token_names_tenant_and_user() -> None:
    token = issue_token(secret=SECRET, tenant_id="t1", user_id="u1", ttl=timedelta(minutes=5))
    who = check(f"Bearer {token}")
    assert (who.tenant_id, who.user_id) == ("t1", "u1")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer not.a.token",
        "Bearer "
        + issue_token(
            secret="another-secret-another-secret-xx",
            tenant_id="t1",
            user_id="u1",
            ttl=timedelta(minutes=5),
        ),
        "Bearer "
        + issue_token(secret=SECRET, tenant_id="t1", user_id="u1", ttl=timedelta(seconds=-60)),
        "Bearer " + jwt.encode({"sub": "u1", "exp": 4102444800}, SECRET),
        "Bearer " + jwt.encode({"tid": "t1", "sub": "u1"}, SECRET),
        "Bearer "
        + jwt.encode({"tid": "t1", "sub": "u1", "exp": 4102444800}, SECRET, algorithm="HS384"),
    ],
)
def test_no_usable_token_is_refused(header: str | None) -> None:
    with pytest.raises(AuthError):
        check(header)
