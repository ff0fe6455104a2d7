"""Images (PNG, JPEG, TIFF incl. multi-page, GIF, BMP, WebP) read by OCR, frame by frame."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

from documents.formats.draft import Draft, Refusal

__all__ = ["read_image"]


def read_image(path: Path, draft: Draft) -> None:
    """OCR each frame; a multi-page TIFF gets `--- page N ---` lines like a PDF.

    Raises:
        Refusal: "too_large" past `max_image_pixels`.
    """
    limits = draft.limits
    try:
        opened = Image.open(path)  # reads the header only
    except Image.DecompressionBombError as e:
        raise Refusal("too_large", f"the image is too large to decode: {e}") from e
    with opened:
        _check_pixels(opened, limits.max_image_pixels)
        frames = int(getattr(opened, "n_frames", 1))
        draft.metadata.update(
            {"width": opened.width, "height": opened.height, "format": opened.format}
        )
        if frames > 1:
            draft.metadata["pageCount"] = frames
        if draft.ocr is None:
            draft.ocr_needed = True
            return
        for index in range(frames):
            if draft.sink.full:
                break
            opened.seek(index)
            _check_pixels(opened, limits.max_image_pixels)
            text = draft.read_pixels(_frame_png(opened, limits.ocr_max_side))
            if frames > 1:
                draft.sink.marker(f"page {index + 1}")
            draft.sink.line((text or "").strip())
            if frames > 1:
                draft.sink.line()
        draft.close_ocr_budget()


def _check_pixels(frame: Image.Image, limit: int) -> None:
    pixels = frame.width * frame.height
    if pixels > limit:
        reason = f"the image has {pixels:,} pixels, over the limit of {limit:,}"
        raise Refusal("too_large", reason)


def _frame_png(frame: Image.Image, max_side: int) -> bytes:
    """The current frame upright, greyscale, at most `max_side` pixels long, as PNG."""
    picture = ImageOps.exif_transpose(frame).convert("L")
    dpi = frame.info.get("dpi")
    longest = max(picture.size)
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
        if isinstance(dpi, tuple) and len(dpi) == 2:  # the same paper, fewer dots per inch
            dpi = (dpi[0] * scale, dpi[1] * scale)
    buffer = io.BytesIO()
    if isinstance(dpi, tuple) and len(dpi) == 2:
        picture.save(buffer, format="PNG", dpi=dpi)
    else:
        picture.save(buffer, format="PNG")
    return buffer.getvalue()
