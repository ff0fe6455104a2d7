"""Company domains: an address's domain and the parents it may be matched by.

`mail.acme.com` and `eu.mail.acme.com` belong to whoever owns `acme.com`: a sender's
domain is matched against an account's domains at every level down to the registrable
domain (the part a company registers), never above it, so `co.uk` or `com` match no
one. `acme.co.uk` and `acme.com` are two registrable domains: they match the same
account only when it lists both. Registrable domains are found by a small rule instead
of the Public Suffix List: the last two labels, or three under a two-letter country
code whose second level is a generic one (`co.uk`, `com.au`, `co.jp`, `org.nz` ...).
"""

from __future__ import annotations

from typing import Final

__all__ = ["domain_keys", "is_subdomain_of", "registrable_domain"]

#: Second-level labels under which country codes register company names (`acme.co.uk`).
_SECOND_LEVELS: Final = frozenset(
    {"ac", "co", "com", "edu", "gov", "gv", "ltd", "ne", "net", "or", "org", "plc", "sch"}
)


def registrable_domain(domain: str) -> str:
    """The part of a host a company registers: `eu.mail.acme.co.uk` → `acme.co.uk`."""
    labels = [label for label in domain.strip().lower().rstrip(".").split(".") if label]
    if len(labels) <= 2:
        return ".".join(labels)
    if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVELS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def domain_keys(domain: str) -> tuple[str, ...]:
    """The domain and its parents down to the registrable domain, most specific first.

    `eu.mail.acme.com` → (`eu.mail.acme.com`, `mail.acme.com`, `acme.com`); an account
    whose `domain` or `domains` holds any of them owns the address.
    """
    domain = domain.strip().lower().rstrip(".")
    if not domain:
        return ()
    floor = registrable_domain(domain)
    if "." not in floor:
        return ()  # a bare label or a public suffix: no company's
    keys = [domain]
    while keys[-1] != floor and "." in keys[-1]:
        keys.append(keys[-1].split(".", 1)[1])
    return tuple(keys)


def is_subdomain_of(domain: str, parent: str) -> bool:
    """True when `domain` is `parent` itself or under it, and `parent` is no public suffix."""
    return parent in domain_keys(domain)
