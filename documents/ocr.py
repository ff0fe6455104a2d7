"""OCR behind one interface; the local default is Tesseract (Debian `tesseract-ocr`, `-eng`).

Engines are synchronous: they run inside the extraction child process, one page at a time.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from core.exceptions import ProcessorsError, TransientError

__all__ = [
    "OcrEngine",
    "OcrError",
    "OcrResult",
    "OcrUnavailableError",
    "TesseractOcr",
]

#: Tesseract reads body text best at about 300 DPI; scans finer than this are scaled down
_TARGET_DPI: Final = 300


class OcrError(ProcessorsError):
    """The OCR engine cannot read this image (permanent for the image, not the engine)."""


class OcrUnavailableError(TransientError):
    """The OCR engine or service is unavailable; the file is worth trying again later."""


@dataclass(frozen=True, slots=True)
class OcrResult:
    """Text read from one image, lines separated by newlines and paragraphs by blank lines."""

    text: str
    #: mean word confidence in [0, 1] where the engine gives one
    confidence: float | None = None


class OcrEngine(Protocol):
    """Reads the text of one image (PNG, JPEG, TIFF, ... as bytes)."""

    def read_image(self, image: bytes) -> OcrResult:
        """Read the text of `image`.

        Raises:
            OcrError: the image cannot be read (bad image, refused by the engine).
            OcrUnavailableError: the engine is unavailable (missing binary, service down).
        """
        ...


@dataclass(frozen=True, slots=True)
class TesseractOcr:
    """Tesseract through pytesseract, single-threaded, one `tesseract` process per image.

    Picklable, so it serves as its own factory for the extraction child process.
    """

    lang: str = "eng"
    #: seconds one image may take before its `tesseract` process is killed
    timeout: float = 120.0
    #: longest side in pixels after scaling (an A4 page at 300 DPI is 3508)
    max_side: int = 4_200
    #: images with a longer side below this are scaled up 2x (screenshots, small crops)
    upscale_below: int = 1_000
    #: Tesseract page segmentation mode; 3 is automatic layout
    page_segmentation: int = 3

    def __post_init__(self) -> None:
        # Tesseract's OpenMP threads make one page ~4x slower on a shared CPU, not faster;
        # pytesseract passes this process's environment on to `tesseract`.
        os.environ["OMP_THREAD_LIMIT"] = "1"

    def version(self) -> str:
        """The installed Tesseract's version (for readiness).

        Raises:
            OcrUnavailableError: the `tesseract` binary is not installed.
        """
        import pytesseract

        try:
            return str(pytesseract.get_tesseract_version())
        except pytesseract.TesseractNotFoundError as e:
            raise OcrUnavailableError("tesseract is not installed or not on PATH") from e

    def read_image(self, image: bytes) -> OcrResult:
        """Read the text of `image` (see `OcrEngine.read_image`)."""
        import pytesseract

        prepared = prepare_image(image, max_side=self.max_side, upscale_below=self.upscale_below)
        try:
            data: dict[str, list[Any]] = pytesseract.image_to_data(
                prepared,
                lang=self.lang,
                config=f"--psm {self.page_segmentation}",
                timeout=self.timeout,
                output_type=pytesseract.Output.DICT,
            )
        except pytesseract.TesseractNotFoundError as e:
            raise OcrUnavailableError("tesseract is not installed or not on PATH") from e
        except pytesseract.TesseractError as e:
            raise OcrError(f"tesseract could not read the image: {e}") from e
        except RuntimeError as e:  # pytesseract's timeout
            raise OcrError(f"tesseract gave up on the image: {e}") from e
        return _result_of(data)


def prepare_image(image: bytes, *, max_side: int, upscale_below: int) -> Any:
    """`image` as an 8-bit greyscale Pillow image at a resolution OCR reads well.

    Raises:
        OcrError: the bytes are not an image Pillow can open.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as opened:
            dpi = _dpi_of(opened.info)
            picture = ImageOps.exif_transpose(opened).convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise OcrError(f"not an image that can be read: {e}") from e
    scale = 1.0
    if dpi and dpi > _TARGET_DPI:
        scale = _TARGET_DPI / dpi
    longest = max(picture.size) * scale
    if longest > max_side:
        scale *= max_side / longest
    elif longest < upscale_below:
        scale *= 2
    if abs(scale - 1.0) > 0.01:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture


def _dpi_of(info: Mapping[Any, Any]) -> float | None:
    dpi = info.get("dpi")
    if isinstance(dpi, tuple) and dpi and isinstance(dpi[0], int | float) and dpi[0] > 1:
        return float(dpi[0])
    return None


def _result_of(data: dict[str, list[Any]]) -> OcrResult:
    """Lines and paragraphs back from Tesseract's word table, and the mean word confidence."""
    lines: list[str] = []
    words: list[str] = []
    confidences: list[float] = []
    current: tuple[int, int, int] | None = None
    paragraph: tuple[int, int] | None = None
    for i, word in enumerate(data["text"]):
        text = str(word).strip()
        if not text:
            continue
        where = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        if where != current:
            if words:
                lines.append(" ".join(words))
                words = []
            if paragraph is not None and where[:2] != paragraph:
                lines.append("")
            current, paragraph = where, where[:2]
        words.append(text)
        confidence = float(data["conf"][i])
        if confidence >= 0:
            confidences.append(confidence / 100)
    if words:
        lines.append(" ".join(words))
    mean = round(sum(confidences) / len(confidences), 3) if confidences else None
    return OcrResult(text="\n".join(lines), confidence=mean)
