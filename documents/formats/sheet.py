"""Workbooks (XLSX, XLS, ODS) with python-calamine: each sheet named, rows tab-separated."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Final

from python_calamine import CalamineWorkbook, PasswordError

from documents.formats.draft import Draft, Refusal
from documents.formats.ooxml import check_container, document_properties

__all__ = ["cell_text", "read_workbook"]

_SPACES: Final = re.compile(r"\s+")
Cell = int | float | str | bool | dt.time | dt.date | dt.datetime | dt.timedelta | None


def read_workbook(path: Path, draft: Draft) -> None:
    """Write each sheet as a `--- sheet: NAME ---` line and its non-empty rows.

    Raises:
        Refusal: "too_large" for a decompression bomb, "encrypted", "corrupt".
    """
    if draft.kind in ("xlsx", "ods"):
        check_container(path, draft)
        draft.metadata.update(document_properties(path))
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except PasswordError as e:
        raise Refusal("encrypted", "the workbook is protected by a password") from e
    with workbook:
        names = list(workbook.sheet_names)
        draft.metadata["sheetCount"] = len(names)
        draft.metadata["sheetNames"] = names
        rows_by_sheet: dict[str, int] = {}
        for name in names:
            if draft.sink.full:
                break
            rows_by_sheet[name] = _write_sheet(workbook, name, draft)
        draft.metadata["rowCount"] = sum(rows_by_sheet.values())


def _write_sheet(workbook: CalamineWorkbook, name: str, draft: Draft) -> int:
    """Write one sheet; the number of rows read."""
    sink = draft.sink
    limit = draft.limits.max_sheet_rows
    try:
        sheet = workbook.get_sheet_by_name(name)
    except PasswordError as e:
        raise Refusal("encrypted", f"sheet {name!r} is protected by a password") from e
    sink.marker(f"sheet: {name}")
    read = 0
    for row in sheet.iter_rows():
        if read >= limit:
            draft.leave_out(f"first {limit:,} rows of sheet {name!r} read")
            break
        read += 1
        cells = [cell_text(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            sink.line("\t".join(cells))
            if sink.full:
                break
    sink.line()
    return read


def cell_text(value: Cell) -> str:
    """A cell as a reader would type it: `12` not `12.0`, dates in ISO 8601, no line breaks."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        return _SPACES.sub(" ", value).strip()
    return str(value)
