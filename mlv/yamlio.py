"""The one place YAML is read and written: safe loader, C implementation when present.

Every file read here may come from a clone or a remote, so loading is bounded: aliases may
not expand a document by more than MAX_ALIAS_NODES nodes ("billion laughs"), an alias may
not refer to its own anchor, and collections may not nest deeper than MAX_DEPTH (libyaml's
composer recurses in C and crashes the process on very deep nesting). A file breaking a
bound raises LimitError, whose text says which bound.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

YAMLError = yaml.YAMLError

# Nodes that aliases may add to a document, counted as if every alias were written out in
# full. Hand-written files use a few `<<: *defaults` merges: thousands of nodes at most.
MAX_ALIAS_NODES = 100_000
# Nesting of collections. Configs nest a few levels; Python code walking the result
# recursively (flattening params, printing JSON) must stay far below the recursion limit.
MAX_DEPTH = 100
# Text that may nest this deep is first scanned event by event: libyaml's composer recurses
# in C and kills the process (SIGSEGV) somewhere past 20,000 levels.
_SCAN_DEPTH = 2_000


class LimitError(yaml.YAMLError):
    """The document breaks a bound of this module (alias expansion, nesting depth)."""


def _too_deep() -> LimitError:
    return LimitError(f"refused: collections nested more than {MAX_DEPTH} levels deep")


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_tree(root: Any) -> None:
    """Refuse a node graph without aliases (a tree) nesting deeper than MAX_DEPTH. Level by
    level: a scalar's value is a str, a collection's a list (of nodes, or of key and value
    pairs for a mapping)."""
    level = [root]
    depth = 0  # collections above this level
    while level:
        below: list[Any] = []
        for node in level:
            value = node.value
            if type(value) is list:
                if depth >= MAX_DEPTH:
                    raise _too_deep()
                if isinstance(node, yaml.MappingNode):
                    below.extend(itertools.chain.from_iterable(value))
                else:
                    below.extend(value)
        level = below
        depth += 1


def _check_graph(root: Any) -> None:
    """Refuse a composed node graph whose aliases would expand it by more than
    MAX_ALIAS_NODES nodes, that refers to itself, or that nests deeper than MAX_DEPTH once
    expanded. Linear in the number of distinct nodes: an alias is the same node object met
    again, and each node's expanded size and height are computed once."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_: set[int] = set()  # nodes being expanded: meeting one again is a cycle
    extra = 0  # nodes added by aliases so far
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = [id(c) for c in _children(node)]
            size[key] = 1 + sum(size[c] for c in children)
            collection = type(node.value) is list
            height[key] = collection + max((height[c] for c in children), default=0)
            if height[key] > MAX_DEPTH:
                raise _too_deep()
            open_.discard(key)
            continue
        if key in size:  # met again: an alias, counted as if written out in full
            extra += size[key]
            if extra > MAX_ALIAS_NODES:
                raise LimitError(
                    f"refused: aliases (*name) expand to more than {MAX_ALIAS_NODES:,} nodes"
                )
            continue
        if key in open_:
            raise LimitError("refused: an alias (*name) refers to the collection that holds it")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))


def _check_text(text: str | bytes) -> None:
    """Refuse text nesting deeper than MAX_DEPTH before libyaml composes it, when a cheap
    bound says it might nest past _SCAN_DEPTH: each level of nesting needs a flow bracket,
    or in block style a `- `/`key:` on its line or more indentation than its parent."""
    if isinstance(text, str):
        bound = 2 * max(map(len, text.split("\n"))) + text.count("[") + text.count("{")
    else:
        bound = 2 * max(map(len, text.split(b"\n"))) + text.count(b"[") + text.count(b"{")
    if bound < _SCAN_DEPTH:
        return
    depth = 0
    start = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    end = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, start):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
        elif isinstance(event, end):
            depth -= 1


def _load(text: str | bytes, loader_class: Any) -> Any:
    try:
        return _load_checked(text, loader_class)
    except yaml.YAMLError as e:
        # libyaml >= 0.2.6 (PyYAML 6.0.3's wheels) stops at 1,000 levels on its own
        if "maximum nesting depth" in str(e):
            raise _too_deep() from None
        raise


def _load_checked(text: str | bytes, loader_class: Any) -> Any:
    _check_text(text)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # An alias needs an `&anchor` and a `*`: without both, the graph is a tree.
        if (
            ("&" in text and "*" in text)
            if isinstance(text, str)
            else (b"&" in text and b"*" in text)
        ):
            _check_graph(node)
        else:
            _check_tree(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def loads(text: str | bytes) -> Any:
    """Parse YAML text with the safe loader (no arbitrary objects), within the bounds above."""
    return _load(text, _Loader)


def loads_json(text: str | bytes) -> Any:
    """Parse JSON (a params or metrics file) within MAX_DEPTH; ValueError when not JSON."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return doc


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"duplicate key {key!r} on line {line}")
        self.key = key
        self.line = line


class _StrictLoader(_Loader):  # type: ignore[misc]
    """The safe loader, refusing a key given twice in one mapping (YAML would keep the
    last one silently: a stage defined twice would vanish)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[object] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep)


def loads_strict(text: str | bytes) -> Any:
    """loads(), but a key repeated in a mapping raises DuplicateKeyError."""
    return _load(text, _StrictLoader)


def dumps(data: Any, width: int = 80) -> str:
    """Block-style YAML in insertion order, readable in a git diff (long scalars folded
    at width columns)."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=width,
    )
