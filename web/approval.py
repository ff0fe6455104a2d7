"""The approval page (issue 4, item 7): people review pending suggested links in a browser.

One static HTML page, its script and its style, served from `web/static/` with a strict
Content-Security-Policy; the page talks only to the suggested-links API of CONTRACT §4.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import faust
from faust.web import Request, Response, View

__all__ = ["PAGE_PATH", "SECURITY_HEADERS", "register_approval_page"]

PAGE_PATH = "/review"

#: Only this origin's files and API; no inline script, no plugins, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The page holds no data, but a stale script against a newer API is worse than a fetch.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    content_type: str


#: The files a browser may ask for; nothing else under `static/` is served.
_ASSETS = {
    "approval.js": "text/javascript; charset=utf-8",
    "approval.css": "text/css; charset=utf-8",
}


def _read(name: str, content_type: str) -> _Asset:
    return _Asset(resources.files("web").joinpath("static", name).read_bytes(), content_type)


def register_approval_page(app: faust.App) -> None:
    """Add `GET /review` and its script and style under `/review/static/` to `app`."""
    page = _read("approval.html", "text/html; charset=utf-8")
    assets = {name: _read(name, content_type) for name, content_type in _ASSETS.items()}

    def send(view: View, asset: _Asset) -> Response:
        # aiohttp refuses a content_type with parameters; the header carries them.
        return view.bytes(
            asset.body, headers={**SECURITY_HEADERS, "Content-Type": asset.content_type}
        )

    @app.page(PAGE_PATH)
    class ApprovalPage(View):
        async def get(self, request: Request) -> Response:
            return send(self, page)

    @app.page(PAGE_PATH + "/static/{name}")
    class ApprovalAsset(View):
        async def get(self, request: Request, name: str) -> Response:
            asset = assets.get(name)
            if asset is None:
                return self.json(
                    {"error": {"code": "not_found", "message": f"no file {name}"}}, status=404
                )
            return send(self, asset)
