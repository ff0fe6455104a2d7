"""Azure AI Vision OCR against a local server that speaks Image Analysis 4.0's Read API.

The fake checks what the real service checks (path, `api-version`, `features`, key
header, content type, image bytes and dimensions) and answers in its documented shape:
`{"modelVersion", "metadata": {"width", "height"}, "readResult": {"blocks": [{"lines":
[{"text", "boundingPolygon", "words": [{"text", "boundingPolygon", "confidence"}]}]}]}}`.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from documents.azure_vision import MAX_IMAGE_BYTES, AzureVisionOcr, fit_image
from documents.extract import ExtractionLimits, extract
from documents.ocr import OcrError, OcrUnavailableError
from documents.runner import run_extraction
from tests.fixtures import documents as docs

KEY = "fake-vision-key-0123456789"
PATH = "/computervision/imageanalysis:analyze"
LINES = ("Fabrikam Logistics asked for a revised proposal", "before the steering committee meets")


@dataclass
class Received:
    query: dict[str, list[str]]
    headers: dict[str, str]
    size: tuple[int, int]
    length: int
    at: float


@dataclass
class FakeVision:
    """What the server received, and the answers it is told to give before the normal one."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lines: tuple[str, ...] = LINES

    def fail_next(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"error": {"code": str(status), "message": "Rate limit is exceeded."}}
        self.script.extend([(status, headers, body)] * times)


def error(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if inner:
        body["error"]["innererror"] = {"code": inner, "message": message}
    return body


def read_result(lines: tuple[str, ...], width: int, height: int) -> dict[str, Any]:
    def polygon(top: int) -> list[dict[str, int]]:
        return [
            {"x": 10, "y": top},
            {"x": 400, "y": top},
            {"x": 400, "y": top + 20},
            {"x": 10, "y": top + 20},
        ]

    return {
        "modelVersion": "2023-10-01",
        "metadata": {"width": width, "height": height},
        "readResult": {
            "blocks": [
                {
                    "lines": [
                        {
                            "text": line,
                            "boundingPolygon": polygon(30 * i),
                            "words": [
                                {"text": w, "boundingPolygon": polygon(30 * i), "confidence": 0.98}
                                for w in line.split()
                            ],
                        }
                        for i, line in enumerate(lines)
                    ]
                }
            ]
        },
    }


class VisionHandler(BaseHTTPRequestHandler):
    fake: FakeVision

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path != PATH:
            return self.answer(404, error("404", "Resource not found"))
        if self.headers.get("Ocp-Apim-Subscription-Key") != KEY:
            return self.answer(401, error("401", "Access denied due to invalid subscription key"))
        if query.get("api-version") != ["2023-10-01"] or query.get("features") != ["read"]:
            return self.answer(400, error("InvalidRequest", "Unsupported api-version or features"))
        if self.headers.get("Content-Type") != "application/octet-stream":
            return self.answer(400, error("InvalidRequest", "Unsupported content type"))
        if not 0 < len(body) <= MAX_IMAGE_BYTES:
            message = "The image size is not allowed to be zero or larger than 20971520 bytes."
            return self.answer(400, error("InvalidRequest", message))
        try:
            with Image.open(io.BytesIO(body)) as image:
                size = image.size
        except OSError:
            return self.answer(
                400,
                error("InvalidRequest", "Input data is not a valid image.", "InvalidImageFormat"),
            )
        self.fake.received.append(
            Received(query, dict(self.headers.items()), size, len(body), time.monotonic())
        )
        if not (min(size) >= 50 and max(size) <= 16000):
            message = (
                "The image dimension is not allowed to be smaller than 50 and larger than 16000."
            )
            return self.answer(400, error("InvalidRequest", message, "InvalidImageSize"))
        if self.fake.script:
            status, headers, failure = self.fake.script.pop(0)
            return self.answer(status, failure, headers)
        return self.answer(200, read_result(self.fake.lines, *size))


@pytest.fixture
def vision() -> Iterator[FakeVision]:
    fake = FakeVision()
    handler = type("Handler", (VisionHandler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def engine(vision: FakeVision, **options: Any) -> AzureVisionOcr:
    options.setdefault("backoff_initial", 0.05)
    options.setdefault("backoff_max", 0.2)
    options.setdefault("timeout", 10)
    return AzureVisionOcr(vision.url, options.pop("key", KEY), **options)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_read_result_becomes_lines_and_a_confidence(vision: FakeVision) -> None:
    with engine(vision) as ocr:
        result = ocr.read_image(png(800, 600))

    assert result.text == "\n".join(LINES)
    assert result.confidence == 0.98
    (request,) = vision.received
    assert request.query == {"api-version": ["2023-10-01"], "features": ["read"]}
    assert request.headers["Ocp-Apim-Subscription-Key"] == KEY
    assert request.size == (800, 600)


def test_429_then_200_waits_as_retry_after_asks(vision: FakeVision) -> None:
    vision.fail_next(429, retry_after="1")

    with engine(vision) as ocr:
        result = ocr.read_image(png(800, 600))

    assert result.text == "\n".join(LINES)
    first, second = vision.received
    waited = second.at - first.at
    print(f"429 then 200: waited {waited:.2f} s for Retry-After: 1")
    assert 1.0 <= waited < 2.0


def test_retry_after_as_an_http_date_is_honoured(vision: FakeVision) -> None:
    from email.utils import formatdate

    vision.fail_next(429, retry_after=formatdate(time.time() + 2, usegmt=True))

    with engine(vision) as ocr:
        ocr.read_image(png(800, 600))

    first, second = vision.received
    assert 0.5 <= second.at - first.at < 3.0


def test_5xx_is_retried_with_backoff(vision: FakeVision) -> None:
    vision.fail_next(503)
    vision.fail_next(500)

    with engine(vision) as ocr:
        result = ocr.read_image(png(800, 600))

    assert result.text.startswith("Fabrikam")
    assert len(vision.received) == 3


def test_throttling_that_never_ends_is_unavailable(vision: FakeVision) -> None:
    vision.fail_next(429, retry_after="0", times=10)

    with engine(vision, attempts=3) as ocr, pytest.raises(OcrUnavailableError, match="HTTP 429"):
        ocr.read_image(png(800, 600))

    assert len(vision.received) == 3


def test_a_bad_request_is_not_retried(vision: FakeVision) -> None:
    vision.fail_next(400)

    with engine(vision) as ocr, pytest.raises(OcrError, match="HTTP 400"):
        ocr.read_image(png(800, 600))

    assert len(vision.received) == 1


def test_a_wrong_key_is_unavailable_not_a_bad_image(vision: FakeVision) -> None:
    with engine(vision, key="wrong") as ocr, pytest.raises(OcrUnavailableError, match="HTTP 401"):
        ocr.read_image(png(800, 600))


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with (
        AzureVisionOcr(
            "http://127.0.0.1:9/", KEY, attempts=2, backoff_initial=0.01, backoff_max=0.01
        ) as ocr,
        pytest.raises(OcrUnavailableError, match="did not answer"),
    ):
        ocr.read_image(png(800, 600))


@pytest.mark.parametrize(
    ("size", "sent"),
    [
        ((20_000, 400), (16_000, 320)),  # too long: scaled down
        ((30, 30), (50, 50)),  # too small: padded with white
        ((40_000, 60), (16_000, 50)),  # both: scaled, then padded
    ],
)
def test_images_are_fitted_to_the_dimension_limits(
    vision: FakeVision, size: tuple[int, int], sent: tuple[int, int]
) -> None:
    with engine(vision) as ocr:
        ocr.read_image(png(*size))

    assert vision.received[-1].size == sent


def test_an_image_over_20_mb_is_shrunk_below_it(vision: FakeVision) -> None:
    noise = Image.frombytes("L", (5000, 5000), os.urandom(25_000_000))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG", compress_level=1)
    assert len(buffer.getvalue()) > MAX_IMAGE_BYTES

    with engine(vision) as ocr:
        ocr.read_image(buffer.getvalue())

    (request,) = vision.received
    print(f"25 MB noise sent as {request.length:,} bytes, {request.size}")
    assert request.length <= MAX_IMAGE_BYTES


def test_an_image_that_fits_is_sent_untouched() -> None:
    image = png(800, 600)

    assert fit_image(image) is image


def test_bytes_that_are_no_image_are_refused_before_sending(vision: FakeVision) -> None:
    with engine(vision) as ocr, pytest.raises(OcrError, match="not an image"):
        ocr.read_image(b"%PDF-1.7 not an image")

    assert vision.received == []


def test_extract_reads_a_png_through_azure(vision: FakeVision, tmp_path: Path) -> None:
    vision.lines = tuple(docs.OCR_TEXT.split(". "))

    with engine(vision) as ocr:
        extraction = extract(docs.make_png(tmp_path), ocr=ocr)

    assert (extraction.status, extraction.ocr_pages) == ("ok", 1)
    assert docs.word_accuracy(docs.OCR_TEXT, extraction.text) == 1.0


async def test_the_runner_builds_the_azure_engine_in_its_child(
    vision: FakeVision, tmp_path: Path
) -> None:
    vision.fail_next(429, retry_after="0")

    extraction = await run_extraction(
        docs.make_scanned_pdf(tmp_path),
        content_type="application/pdf",
        file_name="scanned.pdf",
        limits=ExtractionLimits(),
        ocr_factory=functools.partial(AzureVisionOcr, vision.url, KEY, backoff_initial=0.05),
        timeout=60,
    )

    assert (extraction.status, extraction.ocr_pages) == ("ok", 1)
    assert "Fabrikam Logistics asked for a revised proposal" in extraction.text
    assert len(vision.received) == 2
