"""Each format's text, structure and metadata, extracted in-process."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from documents.extract import Extraction, extract
from documents.formats.pdf import pdf_date
from documents.formats.sheet import cell_text
from tests.fixtures import documents as docs


def flat(text: str) -> str:
    """Whitespace collapsed: text layers wrap lines where the page did."""
    return re.sub(r"\s+", " ", text)


def timed(path: Path, **hints: str | None) -> Extraction:
    started = time.perf_counter()
    extraction = extract(
        path, content_type=hints.get("content_type"), file_name=hints.get("file_name", path.name)
    )
    print(f"{path.name}: {extraction.kind} in {(time.perf_counter() - started) * 1000:.1f} ms")
    return extraction


def test_pdf_with_a_text_layer_keeps_its_pages_and_metadata(tmp_path: Path) -> None:
    extraction = timed(docs.make_text_pdf(tmp_path))

    assert extraction.status == "ok", extraction.reason
    assert (extraction.kind, extraction.truncated, extraction.ocr_pages) == ("pdf", False, 0)
    pages = re.split(r"--- page \d+ ---", extraction.text)
    assert [flat(p).strip() for p in pages[1:]] == list(docs.PDF_PAGES)
    assert re.findall(r"--- page (\d+) ---", extraction.text) == ["1", "2", "3"]
    assert extraction.metadata == {
        "mimeType": "application/pdf",
        "pageCount": 3,
        "title": docs.TITLE,
        "author": docs.AUTHOR,
        "created": "2026-11-02T11:30:00Z",
        "modified": "2026-11-03T09:00:00+01:00",
    }


def test_docx_keeps_headings_lists_tables_and_headers(tmp_path: Path) -> None:
    extraction = timed(docs.make_docx(tmp_path))

    assert extraction.status == "ok", extraction.reason
    assert extraction.kind == "docx"
    lines = extraction.text.splitlines()
    assert "# Executive summary" in lines
    assert "## Commercial terms" in lines
    assert "- Pilot in Rotterdam" in lines
    table = ["\t".join(row) for row in docs.DOCX_TABLE]
    start = lines.index(table[0])
    assert lines[start : start + 3] == table
    assert lines.index("## Commercial terms") < start < lines.index("Payment within 30 days.")
    assert lines[-2:] == ["--- headers and footers ---", "Confidential — Northwind Sales"]
    meta = extraction.metadata
    assert (meta["title"], meta["author"], meta["language"]) == (docs.TITLE, docs.AUTHOR, "en-GB")
    assert meta["created"] == "2026-11-02T11:30:00Z"


def test_docx_merged_cells_are_written_once(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "Pricing"
    table.cell(0, 2).text = "EUR"
    for column, value in enumerate(("a", "b", "c")):
        table.cell(1, column).text = value
    path = tmp_path / "merged.docx"
    document.save(str(path))

    assert extract(path).text.splitlines() == ["Pricing\tEUR", "a\tb\tc"]


def test_xlsx_names_both_sheets_and_writes_rows_tab_separated(tmp_path: Path) -> None:
    extraction = timed(docs.make_xlsx(tmp_path))

    assert extraction.status == "ok", extraction.reason
    assert extraction.kind == "xlsx"
    assert extraction.text.split("\n\n") == [
        "--- sheet: Pricing ---\n"
        "Product\tSeats\tUnit price\tStart\n"
        "Route Optimization Suite\t120\t800\t2027-01-01\n"
        "Driver app\t450\t59.5\t2027-02-01",
        "--- sheet: Contacts ---\n"
        "Name\tEmail\tRole\n"
        "Priya Raman\tpriya.raman@fabrikam-logistics.com\tChampion\n"
        "Dan Ortiz\tdan.ortiz@northwind-sales.com\tAccount executive",
    ]
    meta = extraction.metadata
    assert (meta["sheetCount"], meta["sheetNames"]) == (2, ["Pricing", "Contacts"])
    assert (meta["author"], meta["title"], meta["rowCount"]) == (docs.AUTHOR, docs.TITLE, 6)


def test_csv_rows_become_tab_separated_lines(tmp_path: Path) -> None:
    extraction = timed(docs.make_csv(tmp_path))

    assert (extraction.status, extraction.kind) == ("ok", "csv")
    assert extraction.text.splitlines() == ["\t".join(row) for row in docs.CSV_ROWS]
    assert (extraction.metadata["rowCount"], extraction.metadata["columnCount"]) == (3, 3)


def test_semicolon_csv_and_tsv_are_recognised(tmp_path: Path) -> None:
    semicolons = tmp_path / "export.csv"
    semicolons.write_text("name;amount\nFabrikam;96000\nContoso;12000\n")
    tabs = tmp_path / "export.tsv"
    tabs.write_text("name\tamount\nFabrikam, Inc.\t96000\n")

    assert extract(semicolons, file_name=semicolons.name).text == (
        "name\tamount\nFabrikam\t96000\nContoso\t12000"
    )
    assert extract(tabs, file_name=tabs.name).text == "name\tamount\nFabrikam, Inc.\t96000"


def test_html_becomes_text_without_scripts_with_title_language_author(tmp_path: Path) -> None:
    extraction = timed(docs.make_html(tmp_path))

    assert (extraction.status, extraction.kind) == ("ok", "html")
    assert "Pipeline grew by 18 percent." in extraction.text
    assert "EMEA" in extraction.text
    assert "tracking" not in extraction.text
    assert "color" not in extraction.text
    meta = extraction.metadata
    assert (meta["title"], meta["language"], meta["author"]) == (
        "Quarterly review",
        "en",
        "Dan Ortiz",
    )


def test_markdown_is_kept_as_written_with_its_title(tmp_path: Path) -> None:
    extraction = timed(docs.make_markdown(tmp_path))

    assert (extraction.status, extraction.kind) == ("ok", "markdown")
    assert extraction.text == docs.MARKDOWN.strip()
    assert extraction.metadata["title"] == "Mutual action plan"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_plain_text_in_any_common_encoding(tmp_path: Path, encoding: str) -> None:
    extraction = timed(docs.make_txt(tmp_path, encoding=encoding))

    assert (extraction.status, extraction.kind) == ("ok", "text")
    assert extraction.text == docs.PLAIN_TEXT.strip()


def test_the_bytes_decide_the_kind_not_the_name_or_content_type(tmp_path: Path) -> None:
    pdf = docs.make_text_pdf(tmp_path)
    disguised = pdf.rename(tmp_path / "contract.docx")

    extraction = extract(
        disguised,
        content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        file_name="contract.docx",
    )

    assert (extraction.status, extraction.kind) == ("ok", "pdf")
    assert docs.PDF_PAGES[0][:30] in flat(extraction.text)


def test_text_declared_as_a_pdf_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("Renewal call moved to Friday.\n")

    extraction = extract(path, content_type="application/pdf", file_name="notes.pdf")

    assert (extraction.status, extraction.kind, extraction.text) == (
        "ok",
        "text",
        "Renewal call moved to Friday.",
    )


@pytest.mark.parametrize(
    ("builder", "content_type", "kind"),
    [
        (docs.make_csv, "text/csv", "csv"),
        (docs.make_html, "text/html; charset=utf-8", "html"),
        (docs.make_markdown, "text/markdown", "markdown"),
    ],
)
def test_content_type_names_a_text_kind_when_the_name_does_not(
    tmp_path: Path, builder: Callable[[Path], Path], content_type: str, kind: str
) -> None:
    anonymous = builder(tmp_path).rename(tmp_path / "attachment")

    extraction = extract(anonymous, content_type=content_type, file_name=None)

    assert (extraction.status, extraction.kind) == ("ok", kind)


def test_pdf_dates_become_iso_8601() -> None:
    assert pdf_date("D:20240102030405+01'00'") == "2024-01-02T03:04:05+01:00"
    assert pdf_date("D:20240102030405Z") == "2024-01-02T03:04:05Z"
    assert pdf_date("D:2024") == "2024-01-01T00:00:00"
    assert pdf_date("yesterday") is None


def test_cells_read_as_people_typed_them() -> None:
    import datetime as dt

    assert [
        cell_text(v)
        for v in (
            12.0,
            0.1 + 0.2,
            True,
            None,
            "a\nb\tc",
            dt.datetime(2027, 1, 1, 9, 30, tzinfo=dt.UTC),
            7,
        )
    ] == ["12", "0.3", "TRUE", "", "a b c", "2027-01-01T09:30:00+00:00", "7"]


def test_docx_text_boxes_are_read_after_the_body(tmp_path: Path) -> None:
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph("Body first.")
    box = parse_xml(
        '<w:p xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
        ' xmlns:v="urn:schemas-microsoft-com:vml"><w:r><w:pict><v:shape><v:textbox>'
        "<w:txbxContent><w:p><w:r><w:t>Boxed: pilot starts in March</w:t></w:r></w:p>"
        "</w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
    )
    document.element.body.insert(0, box)
    path = tmp_path / "boxed.docx"
    document.save(str(path))

    assert extract(path).text.splitlines() == [
        "Body first.",
        "",
        "--- text boxes ---",
        "Boxed: pilot starts in March",
    ]


def test_docx_footnotes_are_read_after_the_body(tmp_path: Path) -> None:
    import docx
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    footnotes = (
        f'<w:footnotes xmlns:w="{w}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:t>---</w:t></w:r></w:p>'
        "</w:footnote>"
        '<w:footnote w:id="1"><w:p><w:r><w:t>Prices exclude VAT.</w:t></w:r></w:p></w:footnote>'
        "</w:footnotes>"
    ).encode()
    document = docx.Document()
    document.add_paragraph("Total: 96,000 USD.")
    part = Part(
        PackURI("/word/footnotes.xml"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml",
        footnotes,
        document.part.package,
    )
    document.part.relate_to(
        part, "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"
    )
    path = tmp_path / "footnoted.docx"
    document.save(str(path))

    assert extract(path).text.splitlines() == [
        "Total: 96,000 USD.",
        "",
        "--- footnotes ---",
        "Prices exclude VAT.",
    ]
