"""Progress bars draw on a terminal only."""

from __future__ import annotations

import io
import sys

import pytest

from processors.progress import on_terminal, progress_bar, tracked


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_the_output_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    with progress_bar("replaying", total=3, stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""
    assert list(tracked(iter([1, 2]), "publishing")) == [1, 2]
    assert capsys.readouterr().err == ""  # pytest's capture is not a terminal


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = Terminal()
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert on_terminal(stream)
    with progress_bar("replaying", total=4, unit="letter", stream=stream) as bar:
        bar.update(4)
    assert "replaying:" in stream.getvalue() and "/4 " in stream.getvalue()


def test_no_bar_when_stdout_is_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # `... | tee log`: the bar stays quiet
    assert not on_terminal(Terminal())
