"""mlv.util.plainyaml against yamlio (PyYAML's safe loader): whatever text it reads, it reads
to the value yamlio gives (types included: True is not 1, "1" is not 1), it never reads a text
yamlio refuses, and it does read the configs mlv writes, so that a command reading them
does not import PyYAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlv import yamlio
from mlv.util import plainyaml


def _typed(value: Any) -> str:
    """value with every scalar's type spelled out: equal only when yamlio's is the same."""

    def tag(v: Any) -> Any:
        if isinstance(v, dict):
            return {"dict": [[tag(k), tag(x)] for k, x in v.items()]}
        if isinstance(v, list):
            return {"list": [tag(x) for x in v]}
        return [type(v).__name__, repr(v)]

    return json.dumps(tag(value))


def _agrees(text: str) -> Any:
    """plainyaml's answer for text, after checking it against yamlio's."""
    got = plainyaml.load(text)
    if got is plainyaml.UNSURE:
        return got
    assert plainyaml.load(text.encode()) is not plainyaml.UNSURE
    want = yamlio.loads(text)  # raises if yamlio refuses what plainyaml read
    assert _typed(got) == _typed(want), text
    return got


# Scalars mlv's configs hold, and words and characters that make YAML read them otherwise.
_TRICKY = [
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "~",
    "true",
    "False",
    "0",
    "00",
    "012",
    "0x1f",
    "1_000",
    "1e3",
    ".5",
    ".inf",
    ".NaN",
    "-1",
    "+1",
    "1:30",
    "2001-12-14",
    "=",
    "<<",
    "a b",
    "a #b",
    "a: b",
    "a:",
    ":a",
    "-a",
    "- a",
    "&a",
    "*a",
    "!a",
    "%a",
    "@a",
    "|",
    ">",
    "'a",
    '"a"',
    "[a]",
    "{a: 1}",
    "a,b",
    "./x",
    "../x",
    "~/x",
    ".x",
    "...",
    "---",
    "s3://bucket/path",
    "ssh://user@host:22/p",
    "a%20b",
    "a=b",
    "x\\y",
    "\t",
    " a",
    "a ",
]
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_./:@%~+=,-]{0,12}", fullmatch=True)
_scalars = st.one_of(
    st.integers(min_value=-5, max_value=10**20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, width=32),
    st.sampled_from(_TRICKY),
    _names,
    st.text(alphabet="ab:# -_./'\"~\\{}[],&*!|>%@=\n\t", max_size=8),
)
_keys = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True), st.sampled_from(_TRICKY)
)
_docs = st.recursive(
    st.dictionaries(_keys, _scalars, min_size=1, max_size=4),
    lambda inner: st.dictionaries(
        _keys,
        st.one_of(_scalars, inner, st.lists(_scalars, max_size=3), st.just({}), st.just([])),
        min_size=1,
        max_size=4,
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_docs)
def test_what_yamlio_writes_reads_back_the_same(doc: dict[str, Any]) -> None:
    _agrees(yamlio.dumps(doc))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["core", "cache", "remote", "state"]),
        st.dictionaries(
            st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(
                lambda k: k not in ("yes", "no", "on", "off", "true", "false", "null", "y", "n")
            ),
            st.one_of(
                st.integers(min_value=0, max_value=10**6),
                st.booleans(),
                st.from_regex(r"(s3://|/|\.\./|[a-z])[a-z0-9_./-]{0,20}", fullmatch=True)
                .filter(lambda v: not v.endswith(":"))
                .filter(
                    # YAML 1.1's words, y and n too: the reader leaves them to PyYAML
                    lambda v: v not in ("yes", "no", "on", "off", "true", "false", "null", "y", "n")
                ),
                st.lists(st.sampled_from(["hardlink", "symlink", "reflink", "copy"]), max_size=3),
            ),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_configs_as_mlv_writes_them_are_read_without_pyyaml(doc: dict[str, Any]) -> None:
    text = yamlio.dumps(doc)
    got = _agrees(text)
    assert got is not plainyaml.UNSURE, text
    assert got == doc


def _line(indent: str, form: int, key: str, value: str) -> str:
    return indent + (f"{key}:", f"{key}: {value}", f"- {value}")[form]


_values = st.one_of(
    st.sampled_from([*_TRICKY, "1", "true", "false", "null", "{}", "[]", "'q'", "'q''r'"]),
    _names,
    st.text(alphabet="ab:#- '\"0{}[]&*~./", max_size=6),
)
_LINES = st.lists(
    st.one_of(
        st.builds(
            _line,
            st.sampled_from(["", "", "  ", "    ", " "]),
            st.integers(0, 2),
            st.one_of(st.sampled_from(["a", "b", "c", "yes", "on", "null", "x-y"]), _keys),
            _values,
        ),
        st.sampled_from(["", " ", "# c", "---", "...", "a: 1 # c", "\tb: 1"]),
    ),
    min_size=1,
    max_size=8,
)


# Texts in the shape plainyaml reads (block mappings by two spaces, `- item` lists under
# their key), with keys given twice and one line moved, made an item or a comment: the
# structure decides (each scalar alone: the next test).
_benign = st.one_of(
    _names.filter(lambda v: v not in _TRICKY and not v.endswith(":")),
    st.sampled_from(["0", "7", "true", "false", "null", "{}", "[]", "'q r'", "./x", "~/x"]),
)
_rkeys = st.sampled_from(["a", "b", "c", "_k", "x-y"])
_raw = st.recursive(
    st.lists(st.tuples(_rkeys, _benign), min_size=1, max_size=4),
    lambda inner: st.lists(
        st.tuples(
            _rkeys,
            st.one_of(_benign, st.none(), st.tuples(_benign, _benign), st.tuples(_benign), inner),
        ),
        min_size=1,
        max_size=4,
    ),
    max_leaves=10,
)


def _render(node: list[tuple[str, Any]], indent: str = "") -> list[str]:
    out = []
    for key, child in node:
        if isinstance(child, str):
            out.append(f"{indent}{key}: {child}")
            continue
        out.append(f"{indent}{key}:")
        if isinstance(child, tuple):
            out.extend(f"{indent}- {item}" for item in child)
        elif child is not None:
            out.extend(_render(child, indent + "  "))
    return out


@settings(max_examples=600, deadline=None)
@given(_raw, st.integers(0, 40), st.sampled_from(["", " ", "  ", "- ", "# "]))
def test_texts_in_its_shape_are_read_as_yamlio_reads_them_or_handed_over(
    node: list[tuple[str, Any]], at: int, mutation: str
) -> None:
    lines = _render(node)
    if at < len(lines):  # one line indented by another amount, or made an item or a comment
        lines[at] = mutation + lines[at]
    text = "\n".join(lines) + "\n"
    try:
        _agrees(text)
    except yamlio.YAMLError:
        raise AssertionError(f"plainyaml read a text yamlio refuses: {text!r}") from None


@settings(max_examples=500, deadline=None)
@given(_LINES)
def test_random_texts_are_read_as_yamlio_reads_them_or_handed_over(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    try:
        _agrees(text)
    except yamlio.YAMLError:
        raise AssertionError(f"plainyaml read a text yamlio refuses: {text!r}") from None


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        _values,
        st.sampled_from(["0", "7", "12", "00", "012", "9" * 19, "1.0", "+", "-", "a: b: c"]),
        st.text(alphabet="aynoYN01:._-/~' #&*!%@=,", min_size=1, max_size=5),
    )
)
def test_each_scalar_and_key_is_read_as_yamlio_reads_it_or_handed_over(token: str) -> None:
    for text in (
        f"k: {token}\n",
        f"k:\n- {token}\n- x\n",
        f"{token}: 1\n",
        f"a:\n  {token}: x\n",
    ):
        try:
            _agrees(text)
        except yamlio.YAMLError:
            raise AssertionError(f"plainyaml read a text yamlio refuses: {text!r}") from None


def test_the_shapes_it_reads_and_those_it_hands_over() -> None:
    written = "cache:\n  dir: ../shared/cache\n  type:\n  - hardlink\n  - copy\ncore:\n  jobs: 4\n"
    assert _agrees(written) == {
        "cache": {"dir": "../shared/cache", "type": ["hardlink", "copy"]},
        "core": {"jobs": 4},
    }
    assert _agrees("remote:\n  s:\n    url: s3://b/p\n    fsync: false\n    x: null\n") == {
        "remote": {"s": {"url": "s3://b/p", "fsync": False, "x": None}}
    }
    for text in (
        "a: yes\n",  # a bool in YAML 1.1
        "a: 012\n",  # octal
        "a: 1\na: 2\n",  # a key twice: PyYAML keeps the last, silently
        "a: 1 # note\n",
        "a: 1",  # no final line break
        "a:\n    b: 1\n",  # indented by four
        "a:\n  - x\n",  # an indented list
        "a: &x 1\nb: *x\n",
        "a: 'it''s'\n",
        "\ufeffa: 1\n",
        "a:\r\n  b: 1\r\n",
        "- a\n",
        "",
    ):
        assert _agrees(text) is plainyaml.UNSURE, text


def test_a_status_with_a_written_config_imports_no_yaml(tmp_path: Path) -> None:
    """What it is for: reading .mlv/config.yaml as `mlv config` writes it loads no PyYAML."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yamlio.dumps({"cache": {"type": ["hardlink"]}, "core": {"remote": "s"}}))
    code = (
        "import sys\n"
        "from mlv import config\n"
        f"print(config.read_file({str(cfg)!r}), 'yaml' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out == "{'cache': {'type': ['hardlink']}, 'core': {'remote': 's'}} False\n"
