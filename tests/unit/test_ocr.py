"""Tesseract OCR: word accuracy on known text (PNG, scanned PDF, TIFF, JPEG) and its image prep."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from documents.extract import extract
from documents.ocr import OcrError, TesseractOcr, _result_of, prepare_image
from tests.fixtures import documents as docs

MIN_WORD_ACCURACY = 0.9


@pytest.fixture(scope="module")
def tesseract() -> TesseractOcr:
    engine = TesseractOcr()
    engine.version()  # fails loudly when the Debian package is missing
    return engine


def without_markers(text: str) -> str:
    return re.sub(r"--- page \d+ ---", "", text)


def test_png_of_text_is_read_word_for_word(tmp_path: Path, tesseract: TesseractOcr) -> None:
    extraction = extract(docs.make_png(tmp_path), ocr=tesseract)

    accuracy = docs.word_accuracy(docs.OCR_TEXT, extraction.text)
    print(f"PNG (A4, 200 DPI): word accuracy {accuracy:.3f} in {extraction.seconds:.2f} s")
    assert (extraction.status, extraction.kind, extraction.ocr_pages) == ("ok", "image", 1)
    assert accuracy >= MIN_WORD_ACCURACY
    assert extraction.metadata["ocrConfidence"] > 0.8


def test_scanned_pdf_page_is_ocred(tmp_path: Path, tesseract: TesseractOcr) -> None:
    extraction = extract(docs.make_scanned_pdf(tmp_path), ocr=tesseract)

    accuracy = docs.word_accuracy(docs.OCR_TEXT, without_markers(extraction.text))
    print(f"scanned PDF (1 page): word accuracy {accuracy:.3f} in {extraction.seconds:.2f} s")
    assert (extraction.status, extraction.kind, extraction.ocr_pages) == ("ok", "pdf", 1)
    assert extraction.text.startswith("--- page 1 ---\n")
    assert accuracy >= MIN_WORD_ACCURACY


def test_pdf_mixing_text_and_scanned_pages_ocrs_only_the_scan(
    tmp_path: Path, tesseract: TesseractOcr
) -> None:
    import pymupdf

    document = pymupdf.open(docs.make_text_pdf(tmp_path))
    scanned = pymupdf.open(docs.make_scanned_pdf(tmp_path))
    document.insert_pdf(scanned)
    path = tmp_path / "mixed.pdf"
    document.save(path)

    extraction = extract(path, ocr=tesseract)

    assert (extraction.status, extraction.ocr_pages) == ("ok", 1)
    pages = re.split(r"--- page \d+ ---", extraction.text)[1:]
    assert len(pages) == 4
    assert docs.word_accuracy(docs.OCR_TEXT, pages[3]) >= MIN_WORD_ACCURACY
    assert "Northwind Sales proposal" in pages[0]


def test_multipage_tiff_is_read_page_by_page(tmp_path: Path, tesseract: TesseractOcr) -> None:
    extraction = extract(docs.make_multipage_tiff(tmp_path), ocr=tesseract)

    assert (extraction.status, extraction.ocr_pages) == ("ok", 2)
    assert extraction.metadata["pageCount"] == 2
    first, second = re.split(r"--- page \d+ ---", extraction.text)[1:]
    accuracies = (
        docs.word_accuracy(docs.OCR_TEXT, first),
        docs.word_accuracy(docs.OCR_TEXT_PAGE_2, second),
    )
    print(f"TIFF (2 pages): word accuracy {accuracies} in {extraction.seconds:.2f} s")
    assert min(accuracies) >= MIN_WORD_ACCURACY


def test_fine_jpeg_scan_is_scaled_down_and_read(tmp_path: Path, tesseract: TesseractOcr) -> None:
    png = docs.text_page_png(docs.OCR_TEXT, dpi=400)
    path = tmp_path / "photo.jpg"
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").save(path, quality=80, dpi=(400, 400))

    extraction = extract(path, ocr=tesseract)

    accuracy = docs.word_accuracy(docs.OCR_TEXT, extraction.text)
    print(f"JPEG (A4, 400 DPI): word accuracy {accuracy:.3f} in {extraction.seconds:.2f} s")
    assert accuracy >= MIN_WORD_ACCURACY


def test_poor_photocopy_is_still_read(tmp_path: Path, tesseract: TesseractOcr) -> None:
    extraction = extract(docs.make_photocopy_jpeg(tmp_path), ocr=tesseract)

    accuracy = docs.word_accuracy(docs.OCR_TEXT, extraction.text)
    print(f"photocopy (150 DPI, turned, specks, JPEG 60): word accuracy {accuracy:.3f}")
    assert accuracy >= MIN_WORD_ACCURACY


def test_tesseract_runs_single_threaded() -> None:
    TesseractOcr()

    assert os.environ["OMP_THREAD_LIMIT"] == "1"


def test_a_page_takes_well_under_two_seconds(tesseract: TesseractOcr) -> None:
    png = docs.text_page_png(docs.OCR_TEXT, dpi=300)

    started = time.perf_counter()
    result = tesseract.read_image(png)
    seconds = time.perf_counter() - started

    print(f"one A4 page at 300 DPI: {seconds:.2f} s, confidence {result.confidence}")
    assert docs.word_accuracy(docs.OCR_TEXT, result.text) >= MIN_WORD_ACCURACY
    assert seconds < 5


def test_bytes_that_are_no_image_are_an_ocr_error(tesseract: TesseractOcr) -> None:
    with pytest.raises(OcrError, match="not an image"):
        tesseract.read_image(b"definitely not a picture")


@pytest.mark.parametrize(
    ("size", "dpi", "expected"),
    [
        ((4960, 7016), (600, 600), (2480, 3508)),  # A4 at 600 DPI -> 300 DPI
        ((2480, 3508), (300, 300), (2480, 3508)),  # already right
        ((9000, 3000), None, (4200, 1400)),  # no DPI, too long a side
        ((600, 200), None, (1200, 400)),  # a small crop is scaled up
    ],
)
def test_images_are_brought_to_a_resolution_ocr_reads_well(
    size: tuple[int, int], dpi: tuple[int, int] | None, expected: tuple[int, int]
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="PNG", **({"dpi": dpi} if dpi else {}))

    prepared = prepare_image(buffer.getvalue(), max_side=4200, upscale_below=1000)

    assert (prepared.size, prepared.mode) == (expected, "L")


def test_lines_and_paragraphs_are_rebuilt_from_the_word_table() -> None:
    data = {
        "text": ["", "Route", "planning", "for", "", "three", "depots"],
        "block_num": [1, 1, 1, 1, 2, 2, 2],
        "par_num": [1, 1, 1, 1, 1, 1, 1],
        "line_num": [1, 1, 1, 2, 1, 1, 1],
        "conf": [-1, 96, 90, 88, -1, 70, 80],
    }

    result = _result_of(data)

    assert result.text == "Route planning\nfor\n\nthree depots"
    assert result.confidence == pytest.approx((0.96 + 0.9 + 0.88 + 0.7 + 0.8) / 5, abs=0.001)
