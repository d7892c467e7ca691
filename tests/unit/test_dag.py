"""The pipeline graph: order, selection and the refusals, without running anything."""

from __future__ import annotations

import random

import pytest

from mlv.core.pipeline import dag, runcache, spec
from mlv.errors import PipelineError


def graph(text: str, tracked: list[tuple[str, str]] | None = None) -> dag.Graph:
    return dag.build(spec.parse(text), tracked or [])


CHAIN = """
stages:
  evaluate: {cmd: e, deps: [model, data/test], metrics: [m.json]}
  train: {cmd: t, deps: [features/train.npy], outs: [model]}
  featurize: {cmd: f, deps: [data], outs: [features]}
  other: {cmd: o, outs: [o.txt]}
"""


def test_order_follows_dependencies_then_file_order() -> None:
    g = graph(CHAIN)
    assert g.order == ["featurize", "train", "evaluate", "other"]
    assert g.parents["evaluate"] == ["train"]
    assert g.parents["train"] == ["featurize"]  # a dep inside an out counts


def test_selection_upstream_downstream() -> None:
    g = graph(CHAIN)
    assert g.select() == g.order
    assert g.select(["evaluate"]) == ["featurize", "train", "evaluate"]
    assert g.select(["train"], downstream=True) == ["train", "evaluate"]
    assert g.upstream_of("evaluate") == {"featurize", "train"}
    with pytest.raises(PipelineError, match="no stage named 'x'") as e:
        g.select(["x"])
    assert e.value.exit_code == 2  # a name that mlv.yaml does not define: bad usage


def test_a_dep_containing_an_out_depends_on_its_stage() -> None:
    g = graph("stages:\n  a: {cmd: a, outs: [d/x]}\n  b: {cmd: b, deps: [d]}\n")
    assert g.parents["b"] == ["a"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: {cmd: a, deps: [y], outs: [x]}\n  b: {cmd: b, deps: [x], outs: [y]}", "a -> b -> a"),
        (
            "a: {cmd: a, deps: [z], outs: [x]}\n  b: {cmd: b, deps: [x], outs: [y]}\n"
            "  c: {cmd: c, deps: [y], outs: [z]}",
            "a -> b -> c -> a",
        ),
        ("a: {cmd: a, deps: [x], outs: [x]}", "depends on its own output x"),
        ("a: {cmd: a, outs: [x]}\n  b: {cmd: b, metrics: [x]}", "also an output of stage 'a'"),
        ("a: {cmd: a, outs: [x]}\n  b: {cmd: b, outs: [x/y]}", "overlaps output x"),
    ],
)
def test_refusals(text: str, needle: str) -> None:
    with pytest.raises(PipelineError, match=needle.replace("(", r"\(")):
        graph(f"stages:\n  {text}\n")


def test_an_out_tracked_by_a_pointer_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"also tracked by data\.mlv"):
        graph("stages:\n  a: {cmd: a, outs: [data/x]}\n", [("data", "data.mlv")])


def test_run_key_is_canonical() -> None:
    one = runcache.run_key(
        "python t.py", [("a", "xxh128:1"), ("b", "xxh128:2")], {"p.yaml": {"lr": 0.1}},
        [("m", True), ("n.json", False)],
    )  # fmt: skip
    same = runcache.run_key(
        "python t.py", [("b", "xxh128:2"), ("a", "xxh128:1")], {"p.yaml": {"lr": 0.1}},
        [("n.json", False), ("m", True)],
    )  # fmt: skip
    assert one == same and len(one) == 32
    assert runcache.run_key("python t.py", [], {"p.yaml": {"lr": 0.2}}, []) != runcache.run_key(
        "python t.py", [], {"p.yaml": {"lr": 0.1}}, []
    )
    assert runcache.run_key_of(runcache.run_entry_key(one)) == one


def _random_paths(rng: random.Random, n: int) -> list[str]:
    names = ["a", "b", "ab", "a.b", "a-b", "c"]
    return ["/".join(rng.choice(names) for _ in range(rng.randint(1, 4))) for _ in range(n)] + (
        [""] if rng.random() < 0.1 else []
    )


@pytest.mark.parametrize("seed", range(20))
def test_path_index_finds_exactly_the_overlapping_paths(seed: int) -> None:
    """The index that keeps graph building fast agrees with the plain definition."""
    rng = random.Random(seed)
    indexed = _random_paths(rng, 30)
    index = dag.PathIndex()
    for i, path in enumerate(indexed):
        index.add(path, f"s{i}")
    for query in _random_paths(rng, 30):
        expected = sorted((p, f"s{i}") for i, p in enumerate(indexed) if dag.overlaps(p, query))
        assert sorted(index.overlapping(query)) == expected, query
        test = dag.overlaps_any([query])
        assert [p for p in indexed if test(p)] == [p for p in indexed if dag.overlaps(p, query)]


def test_many_stages_build_quickly_and_in_order() -> None:
    """1,000 chained stages: the graph is the chain (a quadratic build took seconds)."""
    lines = ["stages:"]
    for i in range(1000):
        dep = f", deps: [out/{i - 1}]" if i else ""
        lines.append(f"  s{i}: {{cmd: c{dep}, outs: [out/{i}]}}")
    g = graph("\n".join(lines))
    assert g.order == [f"s{i}" for i in range(1000)]
    assert g.parents["s999"] == ["s998"]


def test_generated_stages_are_selected_by_name_or_by_group() -> None:
    g = graph(
        """
stages:
  prep:
    foreach: [a, b]
    do: {cmd: p, outs: ['data/${item}']}
  fit:
    matrix: {src: [a, b], k: [1, 2]}
    cmd: f
    deps: ['data/${item.src}']
    outs: ['m/${key}']
  other: {cmd: o, outs: [o.txt]}
"""
    )
    assert g.order[:2] == ["prep@a", "prep@b"]
    assert g.parents["fit@b-2"] == ["prep@b"]
    assert g.select(["fit@a-1"]) == ["prep@a", "fit@a-1"]
    assert g.select(["prep"]) == ["prep@a", "prep@b"]
    assert g.select(["prep@b"], downstream=True) == ["prep@b", "fit@b-1", "fit@b-2"]
    assert g.select(["fit"]) == ["prep@a", "prep@b", "fit@a-1", "fit@a-2", "fit@b-1", "fit@b-2"]
    with pytest.raises(spec.UnknownStageError, match=r"prep@\* \(2\), fit@\* \(4\), other"):
        g.select(["fit@c-1"])
