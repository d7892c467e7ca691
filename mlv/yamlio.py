"""The one place YAML is read and written: safe loader, C implementation when present."""

from __future__ import annotations

from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

YAMLError = yaml.YAMLError


def loads(text: str | bytes) -> Any:
    """Parse YAML text with the safe loader (no arbitrary objects)."""
    return yaml.load(text, Loader=_Loader)


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
    return yaml.load(text, Loader=_StrictLoader)


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
