"""Whether a communication names an opportunity: "Route Optimization Suite" in a subject.

Names and text are compared as words: case-folded, accents, dashes and punctuation made
spaces (`Fabrikam — Route-Optimization Suite` reads `fabrikam route optimization
suite`). An opportunity's name usually carries its account's name beside what the deal
is (`Fabrikam — Route Optimization Suite`, `Route Optimization Suite (Fabrikam)`); the
account's part is dropped, because everyone writing to Fabrikam names Fabrikam. What is
left must say something: a name made only of generic words (`Renewal`, `2026
Expansion`, `New Business — Q3`, `Pilot`) is never looked for, since every email to
the account could be about it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

__all__ = ["GENERIC_WORDS", "Mention", "distinctive_phrase", "find_mentions", "words"]

#: Words that name no deal on their own: deal types, periods, units, filler.
GENERIC_WORDS: Final = frozenset(
    """
    a an and the of for to in on at by with from new old next
    deal deals opportunity opp opps business account customer client company
    renewal renewals renew renewed expansion expand upsell upgrade cross sell
    add addon addons extension extend amendment
    pilot poc proof concept trial evaluation eval test demo
    license licenses licence licences licensing subscription subscriptions seats seat
    contract contracts order orders purchase po quote proposal agreement sow msa
    service services support maintenance consulting training onboarding
    implementation deployment rollout migration integration project program programme
    phase stage tier plan package bundle
    platform software product products solution solutions suite system systems tool tools
    enterprise team teams pro premium standard basic plus edition
    year years yr yearly annual month months monthly quarter quarterly multi
    q1 q2 q3 q4 h1 h2 fy one two three first second third
    """.split()  # noqa: SIM905  # a list of words reads better as text
)

_SEPARATORS: Final = re.compile(r"\s+[\u2014\u2013\-:|/]\s+|\s*[\u2014\u2013:|/()\[\]]\s*")
_NON_WORD: Final = re.compile(r"[^0-9a-z]+")
#: Numbers, years and periods: `2027`, `fy27`, `q3`, `h2`, `v2`, `y1`.
_PERIOD: Final = re.compile(r"^(?:fy|cy|q|h|v|y)?\d+$")
_MIN_SINGLE_WORD: Final = 4
#: (opportunity name, account name) pairs whose phrase is kept: every evaluation of an
#: account's mail works out the phrase of each of its opportunities again (9 µs each;
#: names are short, so 4,096 are a few hundred KB at most)
PHRASES_KEPT: Final = 4096


@dataclass(frozen=True, slots=True)
class Mention:
    """Where an opportunity's phrase was found: which text, and the words found."""

    where: str
    phrase: str


def words(text: str) -> str:
    """Text as space-separated lower-case words, accents and punctuation gone."""
    if text.isascii():  # nothing to decompose (most names and subjects): a pass less
        return " ".join(_NON_WORD.sub(" ", text.lower()).split())
    return _folded_words(text)


def _folded_words(text: str) -> str:
    """`words` of any text: decomposed, combining marks dropped."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", plain).split())


@lru_cache(maxsize=PHRASES_KEPT)
def distinctive_phrase(name: str, account_name: str | None) -> str | None:
    """The words of an opportunity name worth looking for; None when it is too generic.

    Segments of the name (split on dashes, colons, bars, slashes, brackets) that only
    repeat the account's name are dropped; the rest, as words, must hold a word that is
    not generic and not a number or period (a single such word: at least four letters).
    """
    account = words(account_name or "")
    account_words = set(account.split())
    kept: list[str] = []
    for segment in _SEPARATORS.split(name):
        segment_words = words(segment)
        if not segment_words or segment_words == account:
            continue
        if account_words and set(segment_words.split()) <= account_words:
            continue  # "Fabrikam" of "Fabrikam Logistics"
        kept.append(segment_words)
    phrase_words = " ".join(kept).split()
    # "Fabrikam Route Optimization": the account's words around the name say nothing.
    while len(phrase_words) > 1 and phrase_words[0] in account_words:
        phrase_words.pop(0)
    while len(phrase_words) > 1 and phrase_words[-1] in account_words:
        phrase_words.pop()
    phrase = " ".join(phrase_words)
    if not phrase or phrase in account_words:
        return None
    telling = [w for w in phrase.split() if w not in GENERIC_WORDS and not _PERIOD.match(w)]
    if not telling:
        return None
    if len(phrase.split()) == 1 and len(telling[0]) < _MIN_SINGLE_WORD:
        return None
    return phrase


def find_mentions(phrases: dict[str, str], texts: dict[str, str]) -> dict[str, Mention]:
    """Which phrases (by key) the texts (by where: "subject", "text") name as whole words.

    A phrase found only inside a longer phrase that was also found does not count:
    "Route Optimization Suite Phase 2" names that deal, not "Route Optimization Suite".
    """
    found: dict[str, Mention] = {}
    for where, text in texts.items():
        haystack = f" {words(text)} "
        spans: list[tuple[int, int, str]] = []
        for key, phrase in phrases.items():
            start = haystack.find(f" {phrase} ")
            while start != -1:
                spans.append((start, start + len(phrase) + 2, key))
                start = haystack.find(f" {phrase} ", start + 1)
        for begin, end, key in spans:
            inside_longer = any(
                b <= begin and end <= e and (e - b) > (end - begin) and other != key
                for b, e, other in spans
            )
            if not inside_longer and key not in found:
                found[key] = Mention(where, phrases[key])
    return found
