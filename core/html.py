"""HTML to readable text: no scripts, styles or tracking pixels; blocks become lines."""

from __future__ import annotations

import re
from typing import Final

from selectolax.lexbor import LexborHTMLParser

__all__ = ["MAX_HTML_BYTES", "html_to_text"]

#: HTML beyond this many characters is cut before parsing (a 10 MB "HTML bomb" costs
#: no more than this); the caller learns it was cut.
MAX_HTML_BYTES: Final = 2_000_000

_DROP: Final = "script, style, head, title, noscript, template, svg, iframe, object, img"
_BLOCKS: Final = (
    "p, div, li, tr, h1, h2, h3, h4, h5, h6, table, blockquote, pre, section, article, "
    "header, footer, ul, ol, dl, dt, dd, hr, address"
)
_SPACES: Final = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_BLANK_LINES: Final = re.compile(r"\n{3,}")


def html_to_text(html: str, *, max_chars: int = MAX_HTML_BYTES) -> tuple[str, bool]:
    """Readable text of an HTML fragment or document, and whether the input was cut."""
    truncated = len(html) > max_chars
    tree = LexborHTMLParser(html[:max_chars] if truncated else html)
    for node in tree.css(_DROP):
        node.decompose()
    for node in tree.css("br"):
        node.replace_with("\n")
    for node in tree.css("td, th"):
        node.insert_after("\t")
    for node in tree.css(_BLOCKS):
        node.insert_before("\n")
        node.insert_after("\n")
    root = tree.body or tree.root
    raw = root.text(separator="") if root is not None else ""
    lines = [_SPACES.sub(" ", line).strip() for line in raw.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip(), truncated
