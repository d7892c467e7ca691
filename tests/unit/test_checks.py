"""The checks expression language: what parses, what is refused, how it evaluates."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mlv.core.pipeline import checks
from mlv.errors import PipelineError


def _metrics(**files: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return checks.merged({f"{name}.json": values for name, values in files.items()})


CURRENT = _metrics(m={"accuracy": 0.92, "loss": 0.3, "zero": 0, "note": "hi", "train.loss": 0.5})
BASELINE = _metrics(m={"accuracy": 0.9, "loss": 0.25})


def run(text: str, current: Any = CURRENT, baseline: Any = BASELINE) -> checks.Result:
    return checks.evaluate(checks.parse(text), current, baseline, "main")


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("accuracy >= 0.90", True),
        ("accuracy >= 0.95", False),
        ("accuracy > 0.9 and loss < 0.5", True),
        ("accuracy > 0.95 or loss < 0.5", True),
        ("not accuracy > 0.95", True),
        ("loss <= baseline.loss * 1.05", False),
        ("loss <= baseline.loss * 1.25", True),
        ("accuracy - baseline.accuracy >= 0.01", True),
        ("(accuracy - baseline.accuracy) / baseline.accuracy > 0.05", False),
        ("-loss < 0", True),
        ("+loss > 0", True),
        ("0 < accuracy < 1", True),
        ("0 < accuracy < 0.5", False),
        ("accuracy == 0.92", True),
        ("accuracy != 0.92", False),
        ("train.loss > loss", True),
        ("1e-3 < loss", True),
        ("2 * (loss + 0.1) == 0.8", True),
        ("zero == 0", True),
    ],
)
def test_evaluates(text: str, passed: bool) -> None:
    result = run(text)
    assert result.passed is passed, result
    assert result.reason is None


def test_values_lists_every_name_once_in_order() -> None:
    result = run("loss <= baseline.loss * 1.05 and loss > 0")
    assert result.values == {"loss": 0.3, "baseline.loss": 0.25}
    assert checks.parse("loss < baseline.loss").uses_baseline
    assert not checks.parse("loss < 1").uses_baseline


def test_division_by_zero_fails_with_a_reason() -> None:
    result = run("accuracy / zero > 1")
    assert not result.passed
    assert result.reason == "division by zero in accuracy / zero"
    assert not run("accuracy / (loss - 0.3) > 1").passed


def test_missing_metric_fails_with_a_reason() -> None:
    result = run("nope > 1")
    assert (result.passed, result.reason) == (False, "no metric nope")
    assert result.values == {"nope": None}
    result = run("loss < baseline.f1")
    assert result.reason == "no metric f1 at main"
    result = run("loss < baseline.loss", baseline=None)
    assert result.reason == "no metric loss at main"


def test_non_numeric_metric_fails_with_a_reason() -> None:
    result = run("note > 1")
    assert not result.passed
    assert result.reason is not None and "note is not a number" in result.reason
    assert result.values == {"note": "hi"}


def test_short_circuit_skips_what_it_does_not_need() -> None:
    # `or` stops at the first true condition: the missing metric is never needed
    assert run("accuracy > 0.5 or nope > 1").passed
    assert not run("accuracy > 0.95 and nope > 1").passed
    assert run("accuracy > 0.95 and nope > 1").reason is None


def test_duplicate_metric_across_files_fails_with_a_reason_naming_both() -> None:
    current = _metrics(a={"acc": 1.0}, b={"acc": 0.5, "loss": 1})
    assert run("loss > 0", current).passed  # only a failure when a check names it
    result = run("acc > 0.9", current)
    assert (result.passed, result.values) == (False, {"acc": None})
    assert result.reason == "acc is in both a.json and b.json: rename it in one file"
    assert run("loss > 0 or acc > 0.9", current).passed  # not needed: not a failure
    result = run("loss < baseline.acc", current, current)
    assert result.reason == "acc at main is in both a.json and b.json: rename it in one file"


def test_nan_metric_fails_with_a_reason() -> None:
    nan = _metrics(m={"x": float("nan"), "big": float("inf"), "one": 1})
    for text in ("x > 0", "x != 1", "not x < 0", "x == x", "one + x > 0"):
        result = run(text, nan)
        assert (result.passed, result.reason) == (False, "x is NaN (in m.json)"), text
    assert run("one > 0 or x > 0", nan).passed  # short-circuit: x is not needed
    assert math.isnan(run("x > 0", nan).values["x"])
    result = run("one < baseline.x", nan, nan)
    assert result.reason == "x at main is NaN (in m.json)"
    assert run("big > 1e300", nan).passed  # infinity is a number that compares
    result = run("big - big < 1", nan)
    assert (result.passed, result.reason) == (False, "big - big is NaN")
    result = run("not big * 0 < 1", nan)
    assert (result.passed, result.reason) == (False, "big * 0 is NaN")


def test_overflow_is_no_crash() -> None:
    big = _metrics(m={"x": 1e308})
    result = run("x * 10 > 1", big)  # inf > 1
    assert result.passed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("__import__('os')", "function calls are not allowed"),
        ("__import__('os').system('true') == 0", "function calls are not allowed"),
        ("len(accuracy) > 1", "function calls are not allowed"),
        ("accuracy >= ", "not a valid expression"),
        ("accuracy >", "not a valid expression"),
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("import os", "not a valid expression"),
        ("accuracy = 1", "not a valid expression"),
        ("accuracy.__class__ == 1", "names starting with __ are not allowed"),
        ("__builtins__ > 1", "names starting with __ are not allowed"),
        ("(1).real > 0", "attribute access is allowed only on names"),
        ("(accuracy + 1).real > 0", "attribute access is allowed only on names"),
        ("accuracy", "not a condition"),
        ("accuracy + 1", "not a condition"),
        ("baseline > 1", "`baseline` alone is not a metric"),
        ("accuracy ** 2 > 1", "operator ** is not allowed"),
        ("accuracy // 2 > 1", "operator // is not allowed"),
        ("accuracy % 2 > 1", "operator % is not allowed"),
        ("~accuracy > 1", "operator ~ is not allowed"),
        ("accuracy is 1", "operator is is not allowed"),
        ("accuracy in 1", "operator in is not allowed"),
        ("'a' == 'a'", "strings are not allowed"),
        ("accuracy == None", "the constant None is not allowed"),
        ("accuracy > 1j", "the constant 1j is not allowed"),
        ("metrics[0] > 1", "subscripts are not allowed"),
        ("[1] == [1]", "lists are not allowed"),
        ("accuracy > 1 if loss else 2", "if-else expressions are not allowed"),
        ("lambda: 1", "lambdas are not allowed"),
        ("(x := 1) > 0", "assignments (:=) are not allowed"),
        ("(accuracy > 1) + 1 > 0", "operands of arithmetic must be numbers"),
        ("accuracy and loss", "operands of and/or must be conditions"),
        ("not accuracy", "operands of not must be conditions"),
        ("(accuracy > 1) > 0", "operands of comparisons must be numbers"),
        ("-(accuracy > 1) < 0", "operands of unary minus must be numbers"),
        ("[c for c in ()] == 1", "comprehensions are not allowed"),
        ("f'{accuracy}' == 1", "strings are not allowed"),
        ("True", "the constant True is not allowed"),
        ("False", "the constant False is not allowed"),
        ("not False", "the constant False is not allowed"),
        ("accuracy > 1 or True", "the constant True is not allowed"),
        ("True == 1", "the constant True is not allowed"),
        ("1 < 2", "it names no metric"),
        ("0 < 1 and 2 > 1", "it names no metric"),
        ("9", "not a condition"),
    ],
)
def test_refuses_with_one_clear_line(text: str, why: str) -> None:
    with pytest.raises(PipelineError) as info:
        checks.parse(text)
    message = str(info.value)
    assert why in message, message
    assert "\n" not in message
    assert message.startswith(f'mlv.yaml: check "{text.strip()}"')


def test_deep_nesting_is_refused_not_a_crash() -> None:
    text = "(" * 500 + "accuracy" + ")" * 500 + " > 1"
    try:
        check = checks.parse(text)
    except PipelineError as e:
        assert "nested too deeply" in str(e) or "not a valid expression" in str(e)
    else:
        assert checks.evaluate(check, CURRENT).passed is False
