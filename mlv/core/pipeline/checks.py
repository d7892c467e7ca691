"""Standards: the `checks:` of mlv.yaml, and `mlv metrics check`.

    checks:
      - accuracy >= 0.90
      - loss <= baseline.loss * 1.05
      - 0 < train.loss and train.loss < 1

A check is a small expression, parsed with Python's `ast` module and then refused unless
every node is one of: numbers; names, with dots (`accuracy`, `train.loss`); `baseline.`
followed by a name (that metric at the baseline revision); `+ - * /`; unary `-` and `+`;
parentheses; comparisons `< <= > >= == !=` (chains too: `0 < x < 1`); `and`, `or`, `not`.
It must be a condition (a comparison, or conditions joined by and/or/not) that names at
least one metric (no `True`, no `1 < 2`), and arithmetic and comparisons take numbers
only. Anything else (calls, strings, subscripts, `**`, names starting with `__`, attribute
access on anything but a name) is a PipelineError naming the check and what is not
allowed. Evaluation walks the tree; nothing is ever `eval`ed.

Names are dotted keys of the workspace's metrics, all metrics files merged. A check whose
metric is missing, not a number, NaN, or in two files, or that divides by zero or computes
a NaN (inf - inf), fails with that reason rather than stopping the others. Infinity is a
number: it compares as one.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlv.core.pipeline import revs
from mlv.core.pipeline.revs import Rev, Values, is_nan, is_number
from mlv.core.pipeline.spec import PIPELINE_FILE
from mlv.core.pipeline.vouched import repo_objects
from mlv.core.repo import Repo
from mlv.errors import PipelineError

BASELINE = "baseline"
DEFAULT_BASELINE = "HEAD"

_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOL: dict[type[ast.AST], str] = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_WHAT: dict[type[ast.AST], str] = {
    ast.Call: "function calls",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.IfExp: "if-else expressions",
    ast.Dict: "dicts",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "strings",
    ast.NamedExpr: "assignments (:=)",
    ast.Starred: "starred expressions",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class _Fail(Exception):
    """The check cannot hold: a metric is missing or not a number, or a division by 0."""


@dataclass(frozen=True)
class Check:
    text: str
    tree: ast.expr
    names: tuple[str, ...]  # every name it reads, in order: "accuracy", "baseline.loss"

    @property
    def uses_baseline(self) -> bool:
        return any(n.startswith(BASELINE + ".") for n in self.names)


def parse(text: str) -> Check:
    """A check, or a PipelineError naming it and what it holds that is not allowed."""
    source = text.strip()
    if not source:
        raise _bad(text, "it is empty")
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise _bad(text, f"not a valid expression{where}") from None
    except (ValueError, RecursionError, MemoryError):
        raise _bad(text, "not a valid expression") from None
    names: list[str] = []
    try:
        kind = _kind(tree, text, names)
    except RecursionError:
        raise _bad(text, "it is nested too deeply") from None
    if kind != "bool":
        raise _bad(text, "it is a number, not a condition (compare it: `accuracy >= 0.9`)")
    if not names:
        raise _bad(text, "it names no metric, so it always holds or never does")
    return Check(text, tree, tuple(dict.fromkeys(names)))


def _bad(text: str, why: str) -> PipelineError:
    return PipelineError(
        f'{PIPELINE_FILE}: check "{text.strip()}": {why}',
        "a check holds numbers, metric names, baseline.NAME, + - * /, comparisons and "
        "and/or/not (docs/metrics.md)",
    )


def _kind(node: ast.AST, text: str, names: list[str]) -> str:
    """The type of an allowed node, "num" or "bool"; a PipelineError for anything else."""
    if isinstance(node, ast.Constant):
        if is_number(node.value):
            return "num"
        if isinstance(node.value, bool):
            raise _bad(text, f"the constant {node.value} is not allowed: compare metrics instead")
        if isinstance(node.value, str | bytes):
            raise _bad(text, "strings are not allowed")
        raise _bad(text, f"the constant {node.value!r} is not allowed")
    if isinstance(node, ast.Name | ast.Attribute):
        names.append(_dotted(node, text))
        return "num"
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise _bad(text, f"operator {_SYMBOL.get(type(node.op), '?')} is not allowed")
        _need(node.left, "num", text, names, "arithmetic")
        _need(node.right, "num", text, names, "arithmetic")
        return "num"
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            _need(node.operand, "bool", text, names, "not")
            return "bool"
        if isinstance(node.op, ast.USub | ast.UAdd):
            _need(node.operand, "num", text, names, "unary minus")
            return "num"
        raise _bad(text, f"operator {_SYMBOL.get(type(node.op), '?')} is not allowed")
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _bad(text, f"operator {_SYMBOL.get(type(op), '?')} is not allowed")
        for operand in [node.left, *node.comparators]:
            _need(operand, "num", text, names, "comparisons")
        return "bool"
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _need(value, "bool", text, names, "and/or")
        return "bool"
    what = _WHAT.get(type(node), type(node).__name__)
    raise _bad(text, f"{what} are not allowed")


def _need(node: ast.AST, kind: str, text: str, names: list[str], where: str) -> None:
    got = _kind(node, text, names)
    if got != kind:
        wanted = "numbers" if kind == "num" else "conditions"
        raise _bad(text, f"the operands of {where} must be {wanted}")


def _dotted(node: ast.AST, text: str) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise _bad(text, "attribute access is allowed only on names (`baseline.loss`)")
    parts.append(node.id)
    name = ".".join(reversed(parts))
    if any(p.startswith("__") for p in parts):
        raise _bad(text, f"names starting with __ are not allowed ({name})")
    if name == BASELINE:
        raise _bad(text, "`baseline` alone is not a metric: name one, `baseline.loss`")
    return name


# ---- evaluating ------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    check: str
    passed: bool
    values: dict[str, Any]  # each name the check reads -> its value (None: no such metric)
    reason: str | None = None  # why it failed, when not simply false


def merged(metrics: Values) -> dict[str, tuple[str, Any]]:
    """Every metric by dotted key -> (file, value); a key in two files is marked ambiguous
    (a check that needs it fails, naming both files)."""
    out: dict[str, tuple[str, Any]] = {}
    dup: dict[str, list[str]] = {}
    for file, values in metrics.items():
        for key, value in values.items():
            if key in out:
                dup.setdefault(key, [out[key][0]]).append(file)
            else:
                out[key] = (file, value)
    for key, files in dup.items():
        out[key] = (" and ".join(files), _Ambiguous(files))
    return out


@dataclass(frozen=True)
class _Ambiguous:
    files: list[str]


def evaluate(
    check: Check,
    current: dict[str, tuple[str, Any]],
    baseline: dict[str, tuple[str, Any]] | None = None,
    baseline_name: str = DEFAULT_BASELINE,
) -> Result:
    """Evaluate a parsed check against merged metrics (see merged())."""

    def lookup(name: str) -> tuple[Any, str | None]:
        """(value or None, why it cannot be used or None)."""
        if name.startswith(BASELINE + "."):
            key, table, label = name[len(BASELINE) + 1 :], baseline or {}, f" at {baseline_name}"
        else:
            key, table, label = name, current, ""
        if key not in table:
            return None, f"no metric {key}{label}"
        file, value = table[key]
        if isinstance(value, _Ambiguous):
            both = " and ".join(value.files)
            return None, f"{key}{label} is in both {both}: rename it in one file"
        if not is_number(value):
            return value, f"{key}{label} is not a number ({value!r}, in {file})"
        if is_nan(value):
            return value, f"{key}{label} is NaN (in {file})"
        return value, None

    found = {n: lookup(n) for n in check.names}
    values = {n: v for n, (v, _) in found.items()}

    def num(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            value, why = found[_dotted(node, check.text)]
            if why is not None:
                raise _Fail(why)
            return value
        if isinstance(node, ast.UnaryOp):
            operand = num(node.operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        assert isinstance(node, ast.BinOp)
        left, right = num(node.left), num(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _Fail(f"division by zero in {ast.unparse(node)}")
        value = _ARITH[type(node.op)](left, right)
        if is_nan(value):  # inf - inf, 0 * inf, inf / inf
            raise _Fail(f"{ast.unparse(node)} is NaN")
        return value

    def cond(node: ast.AST) -> bool:
        if isinstance(node, ast.UnaryOp):
            return not cond(node.operand)
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(cond(v) for v in node.values)
            return any(cond(v) for v in node.values)
        assert isinstance(node, ast.Compare)
        left = num(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = num(right_node)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    try:
        passed = cond(check.tree)
    except _Fail as e:
        return Result(check.text, False, values, str(e))
    except OverflowError:
        return Result(check.text, False, values, "a number is too large")
    return Result(check.text, passed, values)


# ---- the use case ----------------------------------------------------------------------


@dataclass
class Report:
    baseline: Rev | None  # None when no check names baseline.X
    results: list[Result] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # metrics file -> why unreadable

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def run(repo: Repo, baseline: str | None = None) -> Report:
    """Evaluate every check of the workspace's mlv.yaml against the workspace's metrics,
    and baseline.X against revision baseline (default HEAD) when a check names one."""
    (snap,) = revs.read(repo.root, [None], repo_objects(repo))
    checks = [parse(text) for text in snap.checks]
    report = Report(None, errors=dict(snap.errors))
    if not checks:
        return report
    base_metrics = None
    if any(c.uses_baseline for c in checks) or baseline is not None:
        if not repo.scm:
            raise PipelineError(
                "checks with baseline.NAME need a git repository", "run `git init` and commit"
            )
        (rev,) = revs.resolve(repo.root, [baseline or DEFAULT_BASELINE])
        (base_snap,) = revs.read(repo.root, [rev.commit])
        report.baseline = rev
        base_metrics = merged(base_snap.metrics)
        for file, why in base_snap.errors.items():
            report.errors[f"{file} at {rev.name}"] = why
    current = merged(snap.metrics)
    name = report.baseline.name if report.baseline else DEFAULT_BASELINE
    report.results = [evaluate(c, current, base_metrics, name) for c in checks]
    return report
