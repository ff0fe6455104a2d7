"""Email addresses: their domain, free-mail providers, automated senders."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["FREE_MAIL_DOMAINS", "domain_of", "is_no_reply"]

#: Well-known free-mail providers: never a customer's domain, never linked by domain.
FREE_MAIL_DOMAINS: Final = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk",
        "live.com", "msn.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "aol.com",
        "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "pm.me",
        "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com", "yandex.com",
        "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "fastmail.com",
        "hey.com", "tutanota.com", "orange.fr", "free.fr", "laposte.net", "t-online.de",
        "libero.it", "comcast.net", "verizon.net", "att.net", "btinternet.com",
    }
)  # fmt: skip

_NO_REPLY: Final = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|mailer[-_.]daemon|postmaster|"
    r"bounce[s]?|notifications?|noreply[-_.].*|.*[-_.]noreply)@",
    re.IGNORECASE,
)


def domain_of(address: str) -> str:
    """The lower-cased domain of an email address ('' when there is none)."""
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def is_no_reply(address: str) -> bool:
    """True for automated senders: no-reply, mailer-daemon, notifications ..."""
    return bool(_NO_REPLY.match(address.strip()))
