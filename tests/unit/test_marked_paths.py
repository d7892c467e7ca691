"""Paths that core marks in messages (mlv.errors.rpath): shown from the current folder by
the CLI (tests/e2e/test_subfolder_paths.py), from the root everywhere else."""

from __future__ import annotations

import json

import pytest

from mlv.cli import output
from mlv.errors import UsageError, rpath, show_paths


def test_an_error_reads_from_the_root_for_python_and_marked_for_the_cli() -> None:
    e = UsageError(f"{rpath('d/s/a.txt')}: inside {rpath('d/s')}", f"`mlv commit {rpath('d/s')}`")
    assert str(e) == "d/s/a.txt: inside d/s: `mlv commit d/s`"
    assert (e.message, e.hint) == ("d/s/a.txt: inside d/s", "`mlv commit d/s`")
    wrapped = UsageError(f"import: {e.marked_message}", e.marked_hint)
    assert show_paths(wrapped.text(), lambda p: f"<{p}>") == (
        "import: <d/s/a.txt>: inside <d/s>: `mlv commit <d/s>`"
    )


def test_json_drops_the_marks_and_keeps_what_the_data_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {"error": f"{rpath('d/m.json')}: not JSON", "text": "a literal \\u0000 stays"}
    output.emit_json(data)
    assert json.loads(capsys.readouterr().out) == {
        "error": "d/m.json: not JSON",
        "text": "a literal \\u0000 stays",
    }
