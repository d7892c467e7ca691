"""mlv.core.gitignore: the `/name` lines mlv writes must make real git ignore exactly that
name (checked with `git check-ignore`), and adding or removing them is idempotent."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.core import gitignore

SETTINGS = settings(max_examples=40, deadline=None, database=None)


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    return env


def _init(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=_git_env())


def _ignored(repo: Path, paths: Iterable[str]) -> set[str]:
    """The subset of paths that git ignores (the files need not exist)."""
    paths = list(paths)
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", "-z", "--stdin"],
        cwd=repo,
        # "./" keeps git from reading a leading ":" as pathspec magic
        input=b"".join(b"./" + p.encode() + b"\0" for p in paths),
        capture_output=True,
        env=_git_env(),
    )
    assert proc.returncode in (0, 1), proc.stderr.decode()
    return {p.decode().removeprefix("./") for p in proc.stdout.split(b"\0") if p}


# Names that need care in gitignore syntax, each with look-alikes a wrong line would catch.
TRICKY: dict[str, list[str]] = {
    "plain": ["plain2", "xplain", "PLAIN"],
    "with space": ["with", "space", "withspace", "with  space"],
    "trailing space ": ["trailing space", "trailing space  "],
    "two trailing  ": ["two trailing", "two trailing "],
    " leading space": ["leading space"],
    "#hash": ["hash", "#hashx"],
    "!bang": ["bang", "!bangx"],
    "a#b": ["ab"],
    "a!b": ["ab"],
    "*": ["anything", "x"],
    "*.csv": ["data.csv", "x.csv"],
    "a*b": ["axb", "ab", "a-long-b"],
    "?": ["x", "y"],
    "a?c": ["abc", "axc"],
    "[abc]": ["a", "b", "c"],
    "x[0-9]": ["x5", "x0"],
    "[": ["x"],
    "]": ["x"],
    "back\\slash": ["backslash", "back/slash"],
    "trailing\\": ["trailing"],
    "**": ["a", "deep"],
    "dätä ü": ["data u"],
    "tab\tname": ["tab name", "tabname"],
    ".hidden": ["hidden"],
    "name.mlv": ["name"],
}


def test_escaped_lines_match_exactly_their_names(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo)
    lines = [gitignore.escape(name) for name in TRICKY]
    (repo / ".gitignore").write_text("\n".join(lines) + "\n", encoding="utf-8")
    look_alikes = {x for xs in TRICKY.values() for x in xs} - set(TRICKY)
    queries = set(TRICKY) | look_alikes
    assert _ignored(repo, queries) == set(TRICKY)


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_each_escaped_line_alone(tmp_path: Path, name: str) -> None:
    repo = tmp_path / "repo"
    _init(repo)
    (repo / ".gitignore").write_text(gitignore.escape(name) + "\n", encoding="utf-8")
    others = [x for x in TRICKY[name] if x != name]
    assert _ignored(repo, [name, *others]) == {name}


def test_lines_are_anchored_to_their_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _init(repo)
    (repo / "sub").mkdir()  # the folder of a tracked path exists
    gitignore.add_entry(str(repo), "sub/data")
    gitignore.add_entry(str(repo), "top")
    assert (repo / "sub" / ".gitignore").read_text() == "/data\n"
    assert (repo / ".gitignore").read_text() == "/top\n"
    assert _ignored(
        repo, ["sub/data", "sub/data/inner", "data", "sub/x/data", "top", "sub/top", "other/top"]
    ) == {"sub/data", "sub/data/inner", "top"}


def test_escape_examples() -> None:
    assert gitignore.escape("data") == "/data"
    assert gitignore.escape("#x") == "/\\#x"
    assert gitignore.escape("!x") == "/\\!x"
    assert gitignore.escape("a*b?[c]") == "/a\\*b\\?\\[c\\]"
    assert gitignore.escape("sp ") == "/sp\\ "


component = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=8,
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("shared") / "repo"
    _init(repo)
    return repo


@SETTINGS
@given(st.lists(component, min_size=1, max_size=6, unique=True), st.lists(component, max_size=6))
def test_escaped_lines_match_exactly_their_names_property(
    shared_repo: Path, names: list[str], others: list[str]
) -> None:
    text = "".join(gitignore.escape(n) + "\n" for n in names)
    (shared_repo / ".gitignore").write_text(text, encoding="utf-8")
    queries = set(names) | set(others)
    assert _ignored(shared_repo, queries) == set(names), text


# ---- add_entry / remove_entry ---------------------------------------------------------


def test_add_entry_idempotent_and_keeps_user_lines(tmp_path: Path) -> None:
    root = str(tmp_path)
    gi = tmp_path / "data" / ".gitignore"
    gi.parent.mkdir()
    gi.write_text("*.log\n# mine", encoding="utf-8")  # no final newline
    assert gitignore.add_entry(root, "data/images") == "data/.gitignore"
    assert gi.read_text() == "*.log\n# mine\n/images\n"
    assert gitignore.add_entry(root, "data/images") is None
    assert gi.read_text() == "*.log\n# mine\n/images\n"
    assert gitignore.add_entry(root, "data/#odd name ") == "data/.gitignore"
    assert gitignore.add_entry(root, "data/#odd name ") is None
    assert gi.read_text() == "*.log\n# mine\n/images\n/\\#odd name\\ \n"


def test_add_entry_at_the_root_creates_the_file(tmp_path: Path) -> None:
    assert gitignore.add_entry(str(tmp_path), "model.bin") == ".gitignore"
    assert (tmp_path / ".gitignore").read_text() == "/model.bin\n"


def test_remove_entry_idempotent(tmp_path: Path) -> None:
    root = str(tmp_path)
    gi = tmp_path / ".gitignore"
    gi.write_text("*.log\n/keep\n/data\n", encoding="utf-8")
    assert gitignore.remove_entry(root, "data") == ".gitignore"
    assert gi.read_text() == "*.log\n/keep\n"
    assert gitignore.remove_entry(root, "data") is None
    assert gi.read_text() == "*.log\n/keep\n"
    assert gitignore.remove_entry(root, "absent") is None
    assert gitignore.remove_entry(root, "keep") == ".gitignore"
    assert gi.read_text() == "*.log\n"


def test_remove_entry_of_the_last_line_removes_the_file(tmp_path: Path) -> None:
    root = str(tmp_path)
    (tmp_path / "sub").mkdir()
    gitignore.add_entry(root, "sub/x y")
    assert gitignore.remove_entry(root, "sub/x y") == "sub/.gitignore"
    assert not (tmp_path / "sub" / ".gitignore").exists()
    assert gitignore.remove_entry(root, "sub/x y") is None


def test_remove_entry_leaves_look_alike_lines(tmp_path: Path) -> None:
    root = str(tmp_path)
    gi = tmp_path / ".gitignore"
    gi.write_text("data\n/data/\n/data2\n/data\n", encoding="utf-8")
    assert gitignore.remove_entry(root, "data") == ".gitignore"
    assert gi.read_text() == "data\n/data/\n/data2\n"


def test_add_then_remove_restores_a_users_file(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    root = str(folder)
    gi = folder / ".gitignore"
    original = "*.tmp\n!keep.tmp\n"
    gi.write_text(original, encoding="utf-8")
    gitignore.add_entry(root, "[weird]*")
    gitignore.remove_entry(root, "[weird]*")
    assert gi.read_text() == original
    assert [p.name for p in folder.iterdir()] == [".gitignore"]
