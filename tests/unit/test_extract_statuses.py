"""Bad files end as a status with a reason, never an exception; limits cut with a flag."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from documents.extract import ExtractionLimits, extract
from documents.ocr import OcrUnavailableError
from tests.fixtures import documents as docs

MIB = 1024 * 1024


def test_encrypted_pdf(tmp_path: Path) -> None:
    extraction = extract(docs.make_encrypted_pdf(tmp_path), file_name="encrypted.pdf")

    assert (extraction.status, extraction.kind, extraction.text) == ("encrypted", "pdf", "")
    assert extraction.reason == "the PDF needs a password to open"


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    import pymupdf

    document = pymupdf.open(docs.make_text_pdf(tmp_path))
    path = tmp_path / "restricted.pdf"
    document.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="")

    assert extract(path).status == "ok"


def test_encrypted_docx(tmp_path: Path) -> None:
    extraction = extract(docs.make_encrypted_docx(tmp_path), file_name="encrypted.docx")

    assert (extraction.status, extraction.kind) == ("encrypted", "docx")
    assert extraction.reason == "the Office file is encrypted with a password"


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    extraction = extract(docs.make_truncated_pdf(tmp_path), file_name="truncated.pdf")

    assert (extraction.status, extraction.kind) == ("corrupt", "pdf")
    assert extraction.reason is not None and "not a readable PDF" in extraction.reason


def test_damaged_docx_is_corrupt(tmp_path: Path) -> None:
    extraction = extract(docs.make_corrupt_docx(tmp_path), file_name="broken.docx")

    assert (extraction.status, extraction.kind) == ("corrupt", "docx")
    assert extraction.reason is not None and "zip container is damaged" in extraction.reason


def test_random_bytes_declared_as_pdf_are_corrupt(tmp_path: Path) -> None:
    extraction = extract(
        docs.make_random_bytes(tmp_path), content_type="application/pdf", file_name="x.pdf"
    )

    assert (extraction.status, extraction.kind) == ("corrupt", "pdf")
    assert extraction.reason == "the file is declared as pdf but its bytes are not"


def test_random_bytes_of_no_declared_kind_are_unsupported(tmp_path: Path) -> None:
    extraction = extract(docs.make_random_bytes(tmp_path, name="blob.bin"), file_name="blob.bin")

    assert (extraction.status, extraction.kind) == ("unsupported", "binary")


@pytest.mark.parametrize(("name", "kind"), [("empty.pdf", "pdf"), ("empty.xlsx", "xlsx")])
def test_empty_file(tmp_path: Path, name: str, kind: str) -> None:
    extraction = extract(docs.make_empty(tmp_path, name=name), file_name=name)

    assert (extraction.status, extraction.kind, extraction.reason) == (
        "empty",
        kind,
        "the file is empty",
    )


def test_pdf_without_any_text_is_empty(tmp_path: Path) -> None:
    import pymupdf

    document = pymupdf.open()
    document.new_page()
    path = tmp_path / "blank.pdf"
    document.save(path)

    extraction = extract(path)

    assert (extraction.status, extraction.reason) == ("empty", "the file holds no text")
    assert extraction.metadata["pageCount"] == 1


def test_whitespace_only_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n")

    assert extract(path, file_name="blank.txt").status == "empty"


def test_docx_zip_bomb_past_the_default_limit_is_too_large(tmp_path: Path) -> None:
    bomb = docs.make_zip_bomb(tmp_path, kind="docx", expands_to=210 * MIB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    extraction = extract(bomb, file_name="bomb.docx")

    assert (extraction.status, extraction.kind) == ("too_large", "docx")
    assert extraction.reason is not None and "over the limit of 209,715,200" in extraction.reason
    assert extraction.seconds < 1
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(f"docx bomb ({bomb.stat().st_size:,} bytes zipped) refused in {extraction.seconds:.3f} s")
    assert grown_kb < 50 * 1024


def test_xlsx_zip_bomb_is_too_large(tmp_path: Path) -> None:
    bomb = docs.make_zip_bomb(tmp_path, kind="xlsx", expands_to=30 * MIB)

    extraction = extract(bomb, limits=ExtractionLimits(max_unzipped_bytes=20 * MIB))

    assert (extraction.status, extraction.kind) == ("too_large", "xlsx")


def test_zip_bomb_whose_headers_understate_it_is_caught_while_unzipping(tmp_path: Path) -> None:
    bomb = docs.make_zip_bomb(tmp_path, kind="xlsx", expands_to=30 * MIB, lie=True)

    extraction = extract(bomb, limits=ExtractionLimits(max_unzipped_bytes=20 * MIB))

    # Python's zipfile stops at the declared size and the CRC then fails: either way the
    # expansion never happens.
    assert extraction.status in ("too_large", "corrupt")
    assert extraction.seconds < 1


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = docs.make_text_pdf(tmp_path)

    extraction = extract(path, limits=ExtractionLimits(max_file_bytes=100), file_name="p.pdf")

    assert (extraction.status, extraction.kind) == ("too_large", "pdf")


def test_image_past_the_pixel_limit_is_too_large(tmp_path: Path) -> None:
    path = docs.make_png(tmp_path, dpi=100)

    extraction = extract(
        path, limits=ExtractionLimits(max_image_pixels=1_000), ocr=docs.FixedOcr("x")
    )

    assert (extraction.status, extraction.kind) == ("too_large", "image")


def test_pptx_is_recognised_but_unsupported(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "deck.pptx"
    with zipfile.ZipFile(path, "w") as deck:
        deck.writestr("[Content_Types].xml", "<Types/>")
        deck.writestr("ppt/presentation.xml", "<presentation/>")

    extraction = extract(path)

    assert (extraction.status, extraction.kind) == ("unsupported", "pptx")


# --- truncation --------------------------------------------------------------------------------


def test_text_past_max_chars_is_cut_and_flagged(tmp_path: Path) -> None:
    extraction = extract(docs.make_text_pdf(tmp_path), limits=ExtractionLimits(max_chars=120))

    assert (extraction.status, extraction.truncated) == ("ok", True)
    assert len(extraction.text) <= 120
    assert extraction.reason == "text cut at 120 characters"
    assert "--- page 2 ---" not in extraction.text


def test_text_exactly_at_max_chars_is_not_flagged(tmp_path: Path) -> None:
    path = tmp_path / "exact.txt"
    path.write_text("x" * 50)

    extraction = extract(path, limits=ExtractionLimits(max_chars=50))

    assert (extraction.text, extraction.truncated) == ("x" * 50, False)


def test_pages_past_max_pages_are_left_out_and_flagged(tmp_path: Path) -> None:
    extraction = extract(docs.make_text_pdf(tmp_path), limits=ExtractionLimits(max_pages=2))

    assert (extraction.status, extraction.truncated) == ("ok", True)
    assert extraction.reason == "first 2 of 3 pages read"
    assert "--- page 3 ---" not in extraction.text
    assert extraction.metadata["pageCount"] == 3


def test_rows_past_max_sheet_rows_are_left_out_and_flagged(tmp_path: Path) -> None:
    extraction = extract(docs.make_xlsx(tmp_path), limits=ExtractionLimits(max_sheet_rows=2))

    assert (extraction.status, extraction.truncated) == ("ok", True)
    assert "Driver app" not in extraction.text
    assert "--- sheet: Contacts ---" in extraction.text
    assert extraction.reason == (
        "first 2 rows of sheet 'Pricing' read; first 2 rows of sheet 'Contacts' read"
    )


def test_large_text_file_is_read_only_up_to_its_budget(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("line of a long log\n" * 100_000)

    extraction = extract(path, file_name="log.txt", limits=ExtractionLimits(max_chars=1_000))

    assert (extraction.status, extraction.truncated, len(extraction.text)) == ("ok", True, 1_000)


# --- OCR outcomes --------------------------------------------------------------------------


def test_image_with_ocr_off_is_unsupported(tmp_path: Path) -> None:
    extraction = extract(docs.make_png(tmp_path, dpi=100), ocr=None)

    assert (extraction.status, extraction.kind) == ("unsupported", "image")
    assert extraction.reason == "the text is in images and OCR is off"
    assert (extraction.metadata["width"], extraction.metadata["format"]) == (827, "PNG")


def test_scanned_pdf_with_ocr_off_is_unsupported(tmp_path: Path) -> None:
    extraction = extract(docs.make_scanned_pdf(tmp_path), ocr=None)

    assert (extraction.status, extraction.kind) == ("unsupported", "pdf")


def test_ocr_that_fails_on_every_page_is_ocr_failed(tmp_path: Path) -> None:
    extraction = extract(docs.make_scanned_pdf(tmp_path), ocr=docs.FailingOcr())

    assert extraction.status == "ocr_failed"
    assert extraction.reason == "OCR failed on 1 page(s): the engine cannot read this image"
    assert extraction.metadata["ocrFailedPages"] == 1


def test_ocr_pages_past_the_budget_are_left_out_and_flagged(tmp_path: Path) -> None:
    scanned = docs.make_scanned_pdf(tmp_path, pages=("one", "two", "three"))

    extraction = extract(
        scanned, ocr=docs.FixedOcr("page text"), limits=ExtractionLimits(ocr_max_pages=2)
    )

    assert (extraction.status, extraction.ocr_pages, extraction.truncated) == ("ok", 2, True)
    assert extraction.metadata["ocrSkippedPages"] == 1
    assert extraction.reason == "OCR limited to 2 page(s); 1 more scanned page(s) not read"


def test_unavailable_ocr_raises_so_the_event_is_retried(tmp_path: Path) -> None:
    with pytest.raises(OcrUnavailableError):
        extract(docs.make_png(tmp_path, dpi=100), ocr=docs.UnavailableOcr())


def test_a_file_that_cannot_be_read_at_all_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        extract(tmp_path / "gone.pdf")
