"""The graph of a pipeline: which stage's outputs another stage depends on.

Stage B depends on stage A when a dep (or a params file) of B is an out of A, lies inside
one, or contains one. The graph is checked before anything runs: no cycles, no path
produced by two stages (or one inside another's), no out that a pointer file also tracks.
Orders are topological, ties broken by mlv.yaml's order, so runs are deterministic.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mlv.core.pipeline.spec import PIPELINE_FILE, Pipeline, Stage
from mlv.errors import PipelineError, rpath


def overlaps(a: str, b: str) -> bool:
    """a and b are the same path, or one lies inside the other ("" is the root)."""
    return a == b or a == "" or b == "" or a.startswith(b + "/") or b.startswith(a + "/")


@dataclass
class Graph:
    pipeline: Pipeline
    parents: dict[str, list[str]] = field(default_factory=dict)  # stage -> stages it needs
    children: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # topological, mlv.yaml order on ties

    def stage(self, name: str) -> Stage:
        return self.pipeline.stage(name)

    def select(self, names: Iterable[str] = (), downstream: bool = False) -> list[str]:
        """The stages to consider, in order: all of them with no names; else the named ones
        with everything they need (or, downstream, everything that needs them). A
        foreach/matrix group's name stands for every stage it generates."""
        names = list(names)
        if not names:
            return list(self.order)
        names = self.pipeline.expand_names(names)  # unknown: an error naming the known ones
        edges = self.children if downstream else self.parents
        chosen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in chosen:
                chosen.add(name)
                todo.extend(edges[name])
        return [n for n in self.order if n in chosen]

    def upstream_of(self, name: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.parents[name])
        while todo:
            n = todo.pop()
            if n not in found:
                found.add(n)
                todo.extend(self.parents[n])
        return found


class PathIndex:
    """Paths with a value each, queried for every path overlapping a given one: the path
    itself, its parent folders (a dict look-up per level) and what lies below it (a range
    of the sorted paths). Keeps graph building linear-ish for pipelines of many stages."""

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}
        self._sorted: list[str] = []

    def add(self, path: str, value: str) -> None:
        if path not in self._values:
            self._values[path] = []
            bisect.insort(self._sorted, path)
        self._values[path].append(value)

    def overlapping(self, path: str) -> list[tuple[str, str]]:
        """(indexed path, value) for every indexed path overlapping path, in path order."""
        if path == "":
            found = list(self._sorted)
        else:
            found = [p for p in _parents(path) if p in self._values]
            if path in self._values:
                found.append(path)
            start = bisect.bisect_left(self._sorted, path + "/")
            for p in self._sorted[start:]:
                if not p.startswith(path + "/"):
                    break
                found.append(p)
        return [(p, v) for p in found for v in self._values[p]]


def overlaps_any(paths: Iterable[str]) -> Callable[[str], bool]:
    """A test for "overlaps one of paths", cheap to apply to many candidate paths."""
    paths = list(paths)
    exact = set(paths)
    for path in paths:
        exact.update(_parents(path))
    below = tuple(path + "/" for path in paths)
    if "" in paths:
        return lambda candidate: True
    return lambda candidate: candidate in exact or candidate.startswith(below)


def _parents(path: str) -> list[str]:
    """The folders path lies in, root ("") first."""
    parts = path.split("/")
    return ["", *("/".join(parts[:i]) for i in range(1, len(parts)))]


def build(pipeline: Pipeline, tracked: Iterable[tuple[str, str]] = ()) -> Graph:
    """The checked graph of pipeline; tracked: (data path, pointer file) of every pointer."""
    stages = pipeline.stages
    producers = PathIndex()  # out path -> stage
    for name, stage in stages.items():
        for path in stage.out_paths:
            for other_path, other in producers.overlapping(path):
                raise PipelineError(_clash(path, name, other_path, other))
            producers.add(path, name)
    for data_rel, pointer_rel in tracked:
        for path, name in producers.overlapping(data_rel):
            raise PipelineError(
                f"output {rpath(path)} of stage '{name}' is also tracked by {rpath(pointer_rel)}",
                f"run `mlv rm {rpath(pointer_rel)}` so that the stage alone records it",
            )
    graph = Graph(pipeline, {n: [] for n in stages}, {n: [] for n in stages})
    for name, stage in stages.items():
        inputs = list(stage.deps) + [p.file for p in stage.params]
        for dep in inputs:
            for path, producer in producers.overlapping(dep):
                if producer == name:
                    raise PipelineError(
                        f"stage '{name}' depends on its own output {rpath(path)}",
                        "a stage cannot read what it writes; split it in two",
                    )
                if producer not in graph.parents[name]:
                    graph.parents[name].append(producer)
                    graph.children[producer].append(name)
    graph.order = _order(graph, list(stages))
    return graph


def _clash(path: str, name: str, other_path: str, other: str) -> str:
    if path == other_path:
        whose = f"stage '{other}'" if other != name else "the same stage twice"
        return (
            f"{rpath(PIPELINE_FILE)}: output {rpath(path)} of stage '{name}' is also an "
            f"output of {whose}"
        )
    return (
        f"{rpath(PIPELINE_FILE)}: output {rpath(path)} of stage '{name}' overlaps output "
        f"{rpath(other_path)} of stage '{other}'"
    )


def _order(graph: Graph, file_order: list[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(file_order)}
    waiting = {n: len(graph.parents[n]) for n in file_order}
    ready = sorted((n for n, k in waiting.items() if k == 0), key=rank.__getitem__)
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for child in graph.children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
                ready.sort(key=rank.__getitem__)
    if len(order) < len(file_order):
        raise PipelineError(
            f"{rpath(PIPELINE_FILE)}: the stages form a cycle: {' -> '.join(_cycle(graph, order))}",
            "a stage cannot depend, even indirectly, on its own outputs",
        )
    return order


def _cycle(graph: Graph, done: list[str]) -> list[str]:
    """One cycle among the stages that could not be ordered, as a closed path."""
    left = [n for n in graph.parents if n not in done]
    path = [left[0]]
    seen = {left[0]: 0}
    while True:
        nxt = next(p for p in graph.parents[path[-1]] if p not in done)
        if nxt in seen:
            cycle = [*path[seen[nxt] :], nxt]
            return list(reversed(cycle))
        seen[nxt] = len(path)
        path.append(nxt)
