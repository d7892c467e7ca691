"""mlv.util.quoting.quote_path prints names as git does (core.quotePath): checked against
`git ls-files` for the same names in a real git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlv.util.quoting import quote_path

NAMES = [
    *(f"c{i:02}{chr(i)}end" for i in range(1, 32)),  # every control character git allows
    "del\x7fend",
    "a\x1b[31mred\x1b[0m.txt",
    "x\ny",
    'quote"and\\backslash\nnewline',
    "ordinary name.txt",
    "tab\tand é",  # non-ASCII stays as it is (core.quotePath=false)
    "é plain",
]


def _git_names(repo: Path, quote_path_setting: str) -> list[str]:
    out = subprocess.run(
        ["git", "-c", f"core.quotePath={quote_path_setting}", "ls-files"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout
    return sorted(out.decode("utf-8").splitlines())


def test_quote_path_matches_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for name in NAMES:
        (repo / name).write_text("x")
    subprocess.run(["git", "add", "--", *NAMES], cwd=repo, check=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, check=True, capture_output=True
    ).stdout
    names = [os.fsdecode(n) for n in listed.split(b"\0") if n]
    assert sorted(names) == sorted(NAMES)
    assert sorted(quote_path(n) for n in names) == _git_names(repo, "false")
    ascii_names = [n for n in names if n.isascii()]
    git_true = [n for n in _git_names(repo, "true") if "\\303" not in n]
    assert sorted(quote_path(n) for n in ascii_names) == git_true
    # The one difference from git, on purpose: a name with a double quote or a backslash but
    # no control character is printed as it is (git quotes it), so output stays unchanged
    # for every name that cannot disturb a terminal.
    (repo / 'plain "quoted" and \\ back').write_text("x")
    subprocess.run(["git", "add", "--", 'plain "quoted" and \\ back'], cwd=repo, check=True)
    assert '"plain \\"quoted\\" and \\\\ back"' in _git_names(repo, "false")
    assert quote_path('plain "quoted" and \\ back') == 'plain "quoted" and \\ back'


def test_quote_path_escapes() -> None:
    assert quote_path("a\x1b[31mred.txt") == '"a\\033[31mred.txt"'
    assert quote_path("x\ny") == '"x\\ny"'
    assert quote_path('a"b\\c\td') == '"a\\"b\\\\c\\td"'
    assert quote_path('a"b\\c') == 'a"b\\c'
    assert quote_path("\x7f\x00\a\b\v\f\r") == '"\\177\\000\\a\\b\\v\\f\\r"'
    assert quote_path("data/b.txt") == "data/b.txt"
    assert quote_path(os.fsdecode(b"bad\xff\x01")) == '"bad\\377\\001"'
