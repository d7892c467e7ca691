"""`.mlvignore` matching must agree with real git on the same patterns and tree.

Each case builds a git repo with `.gitignore` files, walks it top-down with `IgnoreRules` (not
descending into ignored folders, as git does) and compares every path with
`git check-ignore --no-index`, which also reports paths inside ignored folders as ignored.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlv.objects.ignore import IGNORE_FILE, IgnoreRules

GITIGNORE = ".gitignore"


def _git_env(home: Path) -> dict[str, str]:
    """No system or user config (core.excludesFile, ...) and no GIT_* from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
    )
    return env


def _make_tree(repo: Path, ignore_files: Mapping[str, str | bytes], paths: Iterable[str]) -> None:
    """Paths ending with "/" are folders, others empty files."""
    for path in paths:
        target = repo / path
        if path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    for base, content in ignore_files.items():
        folder = repo / base
        folder.mkdir(parents=True, exist_ok=True)
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (folder / GITIGNORE).write_bytes(data)


def _walk_with_rules(repo: Path) -> tuple[dict[str, bool], dict[str, bool]]:
    """(ours, is_dir): for every path, whether IgnoreRules ignores it, counting paths inside
    an ignored folder as ignored; ours is only asked about paths git would visit."""
    ours: dict[str, bool] = {}
    is_dir: dict[str, bool] = {}

    def walk(folder: Path, base: str, rules: IgnoreRules, parent_ignored: bool) -> None:
        if not parent_ignored:
            rules = rules.with_file(folder / GITIGNORE, base)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name == ".git" and not base:
                continue
            relpath = f"{base}/{entry.name}" if base else entry.name
            directory = entry.is_dir(follow_symlinks=False)
            ignored = parent_ignored or rules.is_ignored(relpath, directory)
            ours[relpath] = ignored
            is_dir[relpath] = directory
            if directory:
                walk(Path(entry.path), relpath, rules, ignored)

    walk(repo, "", IgnoreRules.empty(), False)
    return ours, is_dir


def _git_check_ignore(repo: Path, home: Path, paths: list[str]) -> dict[str, bool]:
    """git's verdict for each path, from one `check-ignore --stdin -z -v -n` call."""
    # A leading ":" would be read as pathspec magic; "./" keeps the path literal.
    query = [("./" + p if p.startswith(":") else p) for p in paths]
    stdin = b"".join(os.fsencode(p) + b"\0" for p in query)
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z", "-v", "-n"],
        cwd=repo,
        env=_git_env(home),
        input=stdin,
        capture_output=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")
    fields = proc.stdout.split(b"\0")
    assert fields[-1] == b""
    records = [fields[i : i + 4] for i in range(0, len(fields) - 1, 4)]
    assert [os.fsdecode(r[3]) for r in records] == query
    # -v also reports a matching "!" pattern, which means "not ignored".
    return {
        p: bool(r[0]) and not r[2].startswith(b"!") for p, r in zip(paths, records, strict=True)
    }


def _bare_git_dir(git_dir: Path) -> None:
    """The least that git takes for a repository (HEAD, objects/, refs/), written directly:
    `git init` costs ~20 ms a call, most of the random-pattern test's time. No config, no
    info/exclude, no hooks: only the ignore files under test decide."""
    (git_dir / "objects").mkdir(parents=True)
    (git_dir / "refs").mkdir()
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")


def check_against_git(
    root: Path, ignore_files: Mapping[str, str | bytes], paths: Iterable[str]
) -> set[str]:
    """Assert IgnoreRules agrees with git on every path of the tree; return the ignored."""
    repo = root / "repo"
    _bare_git_dir(repo / ".git")
    _make_tree(repo, ignore_files, paths)
    ours, is_dir = _walk_with_rules(repo)
    theirs = _git_check_ignore(repo, root, sorted(ours))
    diff = {
        p: ("dir" if is_dir[p] else "file", f"mlv={ours[p]}", f"git={theirs[p]}")
        for p in ours
        if ours[p] != theirs[p]
    }
    assert not diff, f"ignore files {dict(ignore_files)!r}: {diff}"
    return {p for p, ignored in ours.items() if ignored}


# Each case: ignore files by folder, paths (folders end with "/"), what git ignores.
CASES: dict[str, tuple[dict[str, str | bytes], list[str], set[str]]] = {
    "comments-and-blank-lines": (
        {"": "# a comment\n\n*.log\n   \n\\#hash\n#not-a-pattern\n  # not a comment\n"},
        ["a.log", "d/b.log", "#hash", "#not-a-pattern", "  # not a comment", "keep.txt"],
        {"a.log", "d/b.log", "#hash", "  # not a comment"},
    ),
    "negation": (
        {"": "*.log\n!keep.log\n\\!bang\nbuild/\n!build/keep.txt\nx*\n!xa\nxa\n"},
        [
            "a.log",
            "keep.log",
            "d/keep.log",
            "d/x.log",
            "!bang",
            "bang",
            "build/keep.txt",
            "xa",
            "xb",
            "keep.txt",
        ],
        {"a.log", "d/x.log", "!bang", "build", "build/keep.txt", "xa", "xb"},
    ),
    "negation-of-folder-contents": (
        {"": "data/*\n!data/keep/\n*.bin\n!/data/keep/*.bin\n"},
        ["data/a.csv", "data/keep/x.bin", "data/keep/y.txt", "data/drop/", "other/z.bin"],
        {"data/a.csv", "data/drop", "other/z.bin"},
    ),
    "dir-only": (
        {"": "logs/\ncache/\n/top/\nmid/inner/\n"},
        [
            "logs/a",
            "d/logs/b",
            "cache",
            "d/cache",
            "top/x",
            "d/top/x",
            "mid/inner/x",
            "mid/inner2/x",
            "d/mid/inner/x",
        ],
        {"logs", "logs/a", "d/logs", "d/logs/b", "top", "top/x", "mid/inner", "mid/inner/x"},
    ),
    "anchored-and-unanchored": (
        {"": "/root.txt\nsub/deep.txt\nname.txt\n/dir/*.c\n*/one.py\n"},
        [
            "root.txt",
            "a/root.txt",
            "sub/deep.txt",
            "a/sub/deep.txt",
            "name.txt",
            "a/b/name.txt",
            "dir/x.c",
            "dir/y/x.c",
            "a/dir/x.c",
            "a/one.py",
            "one.py",
            "a/b/one.py",
        ],
        {"root.txt", "sub/deep.txt", "name.txt", "a/b/name.txt", "dir/x.c", "a/one.py"},
    ),
    "double-star": (
        {"": "**/foo\na/**/b\nc/**\n**/x/y\nm**n\np/**q\nr/**\\/s\n/t/**/\n"},
        [
            "foo",
            "d/e/foo",
            "a/b",
            "a/x/b",
            "a/x/y/b",
            "a/xb",
            "c/z",
            "c/zz/z",
            "c",
            "x/y",
            "q/x/y",
            "q/x/yy",
            "mXn",
            "m/n",
            "p/zq",
            "p/z/q",
            "r/s",
            "r/k/s",
            "r/k/l/s",
            "t/u/",
            "t/v",
        ],
        {
            "foo",
            "d/e/foo",
            "a/b",
            "a/x/b",
            "a/x/y",  # by "**/x/y"
            "a/x/y/b",
            "c/z",
            "c/zz",
            "c/zz/z",
            "x/y",
            "q/x/y",
            "mXn",
            "p/zq",
            "r/k/s",
            "r/k/l/s",
            "t/u",
        },
    ),
    "double-star-after-literal-prefix": (  # a git quirk: "a**/b" acts like "a**/**/b"
        {"": "x/a**\n!x/a\nfoo**/bar\n"},
        ["x/a/b", "x/ab", "foobar", "foo/bar", "foo/x/bar", "fooY/bar"],
        {"x/a/b", "x/ab", "foobar", "foo/bar", "foo/x/bar", "fooY/bar"},
    ),
    "character-classes": (
        {
            "": "[abc].txt\n[!x-z]1.dat\n[^m]2.dat\n[[:digit:]][[:upper:]].csv\n[]]b\n"
            "[a-]c\nq[z-a]\n[[:alpha:][:punct:]]s\n[unterminated\n[[:nope:]]\n"
            "[\\]]e\n[[:space:]]w\n"
        },
        [
            "a.txt",
            "d.txt",
            "ab.txt",
            "x1.dat",
            "m1.dat",
            "m2.dat",
            "n2.dat",
            "1A.csv",
            "1a.csv",
            "]b",
            "[b",
            "-c",
            "ac",
            "bc",
            "qz",
            "qa",
            "Zs",
            "#s",
            "5s",
            "[unterminated",
            "n",
            "]e",
            " w",
            "\tw",
            "\x0bw",
        ],
        {
            "a.txt",
            "m1.dat",
            "n2.dat",
            "1A.csv",
            "]b",
            "-c",
            "ac",
            "qz",
            "Zs",
            "#s",
            "]e",
            " w",
            "\tw",
        },
    ),
    "escapes-and-spaces": (
        {"": "trail   \nkeep\\ \n\\ lead\n two\n\\*star\nq\\?\nback\\\\slash\nhash\\#\nend\\\n"},
        [
            "trail",
            "trail   ",
            "keep ",
            "keep",
            " lead",
            "lead",
            " two",
            "xstar",
            "*star",
            "q?",
            "qq",
            "back\\slash",
            "hash#",
            "end",
            "end\\",
        ],
        {"trail", "keep ", " lead", " two", "*star", "q?", "back\\slash", "hash#"},
    ),
    "nested-ignore-files": (
        {
            "": "*.tmp\n/top\n!sub/deeper/KEEP\n",
            "sub": "/only_here\nnested.txt\n!keep.tmp\n/deeper/gone/\nsub\n",
            "sub/deeper": "*\n!*.md\n!.gitignore\n",
            "other": "!*.tmp\n",
        },
        [
            "a.tmp",
            "top",
            "x/top",
            "only_here",
            "sub/only_here",
            "sub/x/only_here",
            "nested.txt",
            "sub/nested.txt",
            "sub/y/nested.txt",
            "sub/keep.tmp",
            "sub/y/keep.tmp",
            "sub/deeper/a.txt",
            "sub/deeper/KEEP",
            "sub/deeper/b.md",
            "sub/deeper/gone/c.md",
            "sub/sub/z",
            "other/o.tmp",
            "other/top",
        ],
        {
            "a.tmp",
            "top",
            "sub/nested.txt",
            "sub/only_here",
            "sub/y/nested.txt",
            "sub/deeper/a.txt",
            "sub/deeper/KEEP",
            "sub/deeper/gone",
            "sub/deeper/gone/c.md",
            "sub/sub",
            "sub/sub/z",
        },
    ),
    "unicode": (
        {"": "é*.txt\n?.bin\n??.dat\n日本/\n*🎉\n[é]x\nÅngström.txt\n"},
        [
            "été.txt",
            "e.txt",
            "é.bin",
            "a.bin",
            "é.dat",
            "ab.dat",
            "日本/x",
            "日本語/x",
            "party 🎉",
            "éx",
            "Ångström.txt",
            "Angstrom.txt",
        ],
        {"été.txt", "a.bin", "é.dat", "ab.dat", "日本", "日本/x", "party 🎉", "Ångström.txt"},
    ),
    "crlf-bom-nul-and-no-final-newline": (
        {"": b"\xef\xbb\xbf*.a\r\nb  \r\nc\r \r\nd\x00e\n\xef\xbb\xbff\ng"},
        ["x.a", "b", "c\r", "c", "d", "de", "dx", "\ufefff", "f", "g"],
        {"x.a", "b", "c\r", "d", "\ufefff", "g"},
    ),
    "case-sensitive": (
        {"": "*.TXT\nMakefile\n"},
        ["a.TXT", "a.txt", "Makefile", "makefile"],
        {"a.TXT", "Makefile"},
    ),
    "weird-names": (
        {"": "*\\[x]\n:colon\n-dash\n*new*\n"},
        ["a[x]", "ax", ":colon", "-dash", "a\nnew\nline", "tab\tname", "%percent"],
        {"a[x]", ":colon", "-dash", "a\nnew\nline"},
    ),
    "never-matching-lines": (
        {"": "!\n/\n!/\n//\n\\\n[\n*/\n"},
        ["a", "b/c", "!", "[", "\\"],
        {"b", "b/c"},  # only "*/" matches: every folder
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_git(tmp_path: Path, name: str) -> None:
    ignore_files, paths, expected = CASES[name]
    assert check_against_git(tmp_path, ignore_files, paths) == expected


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names that are not UTF-8")
def test_matches_git_on_non_utf8_names(tmp_path: Path) -> None:
    """`?` matches one byte, and such names reach IgnoreRules surrogate-escaped."""
    name = os.fsdecode(b"\xff.bin")
    ignored = check_against_git(tmp_path, {"": "?.bin\n??.dat\n"}, [name, "ab.dat", "é.bin"])
    assert ignored == {name, "ab.dat"}


# -- random patterns and trees against git -------------------------------------------------

_PATTERN_PARTS = [
    *"ab.é ",
    "*",
    "**",
    "?",
    "/",
    "!",
    "#",
    "\\",
    "\\ ",
    "[ab]",
    "[!a]",
    "[a-c]",
    "[[:alpha:]]",
    "[]",
    "]",
    "-",
]
_NAMES = ["a", "b", "ab", "ba", "a.b", "é", "a b", "b ", " a", "#a", "!b", "[a]", "a*", "a?", "-"]

_patterns = st.lists(st.sampled_from(_PATTERN_PARTS), min_size=1, max_size=6).map("".join)
_ignore_text = st.lists(_patterns, min_size=1, max_size=5).map(lambda lines: "\n".join(lines))
_relpaths = st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3).map("/".join)


@st.composite
def _trees(draw: st.DrawFn) -> tuple[dict[str, str | bytes], list[str]]:
    paths = draw(st.lists(_relpaths, min_size=1, max_size=12, unique=True))
    files = {p for p in paths if not any(q.startswith(p + "/") for q in paths)}
    folders = sorted({p.rsplit("/", 1)[0] for p in paths if "/" in p})
    bases = ["", *draw(st.lists(st.sampled_from(folders), unique=True))] if folders else [""]
    ignore_files: dict[str, str | bytes] = {base: draw(_ignore_text) for base in bases}
    return ignore_files, sorted(files)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tree=_trees())
def test_random_patterns_match_git(tree: tuple[dict[str, str | bytes], list[str]]) -> None:
    ignore_files, paths = tree
    with tempfile.TemporaryDirectory() as tmp:
        check_against_git(Path(tmp), ignore_files, paths)


# -- API ---------------------------------------------------------------------------------


def test_empty_rules_ignore_nothing() -> None:
    rules = IgnoreRules.empty()
    assert not rules
    assert not rules.is_ignored("a", is_dir=False)
    assert not rules.is_ignored("a", is_dir=True)
    assert IGNORE_FILE == ".mlvignore"


def test_with_lines_returns_new_rules_and_keeps_the_old() -> None:
    empty = IgnoreRules.empty()
    rules = empty.with_lines(["*.tmp"], "")
    assert rules and not empty
    assert rules.is_ignored("x.tmp", is_dir=False)
    assert not empty.is_ignored("x.tmp", is_dir=False)
    assert empty.with_lines(["# only a comment", "", "   "], "") is empty
    assert rules == IgnoreRules.empty().with_lines(["*.tmp"], "")


def test_with_lines_accepts_line_endings_and_a_whole_text() -> None:
    from_text = IgnoreRules.empty().with_lines("a\r\n*.b\n", "")
    from_lines = IgnoreRules.empty().with_lines(["a\r\n", "*.b\n"], "")
    for rules in (from_text, from_lines):
        assert rules.is_ignored("a", is_dir=False)
        assert rules.is_ignored("x/y.b", is_dir=False)
        assert not rules.is_ignored("b", is_dir=False)


def test_patterns_apply_only_below_their_base() -> None:
    rules = IgnoreRules.empty().with_lines(["*", "/x"], "sub/")
    assert rules.is_ignored("sub/a", is_dir=False)
    assert rules.is_ignored("sub/x", is_dir=True)
    assert not rules.is_ignored("sub", is_dir=True)
    assert not rules.is_ignored("subway/a", is_dir=False)
    assert not rules.is_ignored("a", is_dir=False)


def test_last_matching_pattern_wins_across_files() -> None:
    rules = IgnoreRules.empty().with_lines(["!*.csv"], "").with_lines(["*.csv"], "d")
    assert rules.is_ignored("d/a.csv", is_dir=False)
    assert not rules.is_ignored("a.csv", is_dir=False)
    rules = rules.with_lines(["!keep.csv"], "d/e")
    assert not rules.is_ignored("d/e/keep.csv", is_dir=False)
    assert rules.is_ignored("d/e/other.csv", is_dir=False)


def test_with_file(tmp_path: Path) -> None:
    rules = IgnoreRules.empty()
    assert rules.with_file(tmp_path / IGNORE_FILE, "") is rules
    assert rules.with_file(tmp_path / "missing" / IGNORE_FILE, "") is rules
    (tmp_path / "folder").mkdir()
    assert rules.with_file(tmp_path / "folder", "") is rules
    (tmp_path / IGNORE_FILE).write_bytes(b"*.log\r\n!keep.log\n")
    loaded = rules.with_file(str(tmp_path / IGNORE_FILE), "")
    assert loaded.is_ignored("a.log", is_dir=False)
    assert not loaded.is_ignored("keep.log", is_dir=False)


def test_dir_only_patterns_do_not_match_files() -> None:
    rules = IgnoreRules.empty().with_lines(["out/", "!keep/"], "")
    assert rules.is_ignored("a/out", is_dir=True)
    assert not rules.is_ignored("a/out", is_dir=False)
    assert not rules.is_ignored("keep", is_dir=True)


def test_many_patterns() -> None:
    """Thousands of patterns still compile, and negations keep their order."""
    lines = [f"f{i}*" if i % 2 else f"!f{i}*" for i in range(5000)]
    rules = IgnoreRules.empty().with_lines(lines, "")
    assert rules.is_ignored("d/f4999", is_dir=False)
    assert not rules.is_ignored("d/f4998", is_dir=False)
    assert rules.is_ignored("f1", is_dir=False)
