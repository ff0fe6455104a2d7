"""OCR with Azure AI Vision Image Analysis 4.0, feature Read (`azure-ai-vision-imageanalysis`).

The SDK's own retry policy is switched off: tenacity retries 429 and 5xx (and dropped
connections) with exponential backoff, waiting what `Retry-After` asks when the service
says. Images are fitted to the service's limits first (at most 20 MB, sides 50 to 16,000 px).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from azure.ai.vision.imageanalysis import ImageAnalysisClient
from azure.ai.vision.imageanalysis.models import ImageAnalysisResult, VisualFeatures
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from PIL import Image, UnidentifiedImageError
from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from core.retry_after import retry_after_seconds
from documents.ocr import OcrError, OcrResult, OcrUnavailableError

__all__ = ["MAX_IMAGE_BYTES", "MAX_SIDE", "MIN_SIDE", "AzureVisionOcr", "fit_image"]

logger = logging.getLogger(__name__)

#: the service's limits for one image (Image Analysis 4.0 "image requirements")
MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
MIN_SIDE: Final = 50
MAX_SIDE: Final = 16_000
#: formats the service accepts as they are; anything else is re-encoded as PNG
_ACCEPTED: Final = frozenset({"JPEG", "PNG", "GIF", "BMP", "WEBP", "ICO", "TIFF", "MPO"})
_RETRYABLE_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_KEY_REFUSED: Final = frozenset({401, 403, 404})
_SHRINK_STEPS: Final = 8


class AzureVisionOcr:
    """`OcrEngine` on Azure AI Vision; build it inside the extraction child.

    Its factory for `documents.runner` is `functools.partial(AzureVisionOcr, endpoint, key)`.
    """

    def __init__(
        self,
        endpoint: str,
        key: SecretStr | str,
        *,
        attempts: int = 5,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        secret = key.get_secret_value() if isinstance(key, SecretStr) else key
        self._client = ImageAnalysisClient(
            endpoint=endpoint.rstrip("/"),
            credential=AzureKeyCredential(secret),
            retry_total=0,  # tenacity retries, honouring Retry-After
        )
        self._attempts = attempts
        self._backoff = wait_exponential_jitter(initial=backoff_initial, max=backoff_max)
        self._max_retry_after = max_retry_after
        self._timeout = timeout
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP session; safe to call twice."""
        self._client.close()

    def __enter__(self) -> AzureVisionOcr:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read_image(self, image: bytes) -> OcrResult:
        """Read the text of `image` (see `OcrEngine.read_image`)."""
        fitted = fit_image(image)
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            result: ImageAnalysisResult = retrying(self._analyze, fitted)
        except HttpResponseError as e:
            raise _error_of(e) from e
        except (ServiceRequestError, ServiceResponseError) as e:
            raise OcrUnavailableError(f"Azure AI Vision did not answer: {e}") from e
        return _result_of(result)

    def _analyze(self, image: bytes) -> ImageAnalysisResult:
        return self._client.analyze(
            image_data=image,
            visual_features=[VisualFeatures.READ],
            connection_timeout=self._timeout,
            read_timeout=self._timeout,
        )

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = _retry_after(error) if isinstance(error, HttpResponseError) else None
        seconds = min(asked, self._max_retry_after) if asked is not None else self._backoff(state)
        logger.info(
            "Azure AI Vision attempt %d failed (%s); retrying in %.1f s",
            state.attempt_number,
            _status_of(error),
            seconds,
        )
        return seconds


def fit_image(image: bytes) -> bytes:
    """`image` within the service's limits: as it is when it fits, else scaled and re-encoded.

    Too small a side is padded with white up to 50 px, too long a side scaled down to
    16,000 px, and too many bytes scaled down until the PNG (or JPEG) is under 20 MB.

    Raises:
        OcrError: not an image, or one that cannot be brought within the limits.
    """
    try:
        with Image.open(io.BytesIO(image)) as opened:
            size, image_format = opened.size, opened.format
            if (
                image_format in _ACCEPTED
                and len(image) <= MAX_IMAGE_BYTES
                and min(size) >= MIN_SIDE
                and max(size) <= MAX_SIDE
            ):
                return image
            picture = opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise OcrError(f"not an image that can be read: {e}") from e
    scale = min(1.0, MAX_SIDE / max(picture.size))
    for _ in range(_SHRINK_STEPS):
        candidate = _pad(_scaled(picture, scale))
        for encoded in (_encode(candidate, "PNG"), _encode(candidate, "JPEG")):
            if len(encoded) <= MAX_IMAGE_BYTES:
                return encoded
        scale *= 0.7
    message = f"the image ({size[0]}x{size[1]}, {len(image):,} bytes) cannot be fitted"
    raise OcrError(message + " within Azure AI Vision's limits")


def _scaled(picture: Image.Image, scale: float) -> Image.Image:
    if scale >= 1.0:
        return picture
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.LANCZOS)


def _pad(picture: Image.Image) -> Image.Image:
    if min(picture.size) >= MIN_SIDE:
        return picture
    canvas = Image.new("L", (max(picture.width, MIN_SIDE), max(picture.height, MIN_SIDE)), 255)
    canvas.paste(picture, (0, 0))
    return canvas


def _encode(picture: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **({"quality": 85} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, HttpResponseError):
        return error.status_code in _RETRYABLE_STATUS
    return isinstance(error, ServiceRequestError | ServiceResponseError)


def _retry_after(error: HttpResponseError) -> float | None:
    """Seconds the service asked to wait: `Retry-After` as seconds or an HTTP date."""
    response: Any = error.response
    return retry_after_seconds(response.headers if response is not None else None)


def _status_of(error: BaseException | None) -> str:
    if isinstance(error, HttpResponseError):
        return f"HTTP {error.status_code}"
    return type(error).__name__


def _error_of(error: HttpResponseError) -> OcrError | OcrUnavailableError:
    status = error.status_code
    detail = error.message or str(error)
    if status in _RETRYABLE_STATUS:
        return OcrUnavailableError(f"Azure AI Vision kept failing (HTTP {status}): {detail}")
    if status in _KEY_REFUSED:
        return OcrUnavailableError(f"Azure AI Vision refused the request (HTTP {status}): {detail}")
    return OcrError(f"Azure AI Vision could not read the image (HTTP {status}): {detail}")


def _result_of(result: ImageAnalysisResult) -> OcrResult:
    """Lines of each block, blocks separated by a blank line; mean word confidence."""
    read: Any = result.read
    paragraphs: list[str] = []
    confidences: list[float] = []
    for block in read.blocks if read is not None else []:
        lines = [line.text for line in block.lines]
        confidences.extend(word.confidence for line in block.lines for word in line.words)
        if lines:
            paragraphs.append("\n".join(lines))
    mean = round(sum(confidences) / len(confidences), 3) if confidences else None
    return OcrResult(text="\n\n".join(paragraphs), confidence=mean)
