"""Parameter files (YAML or JSON) and the values of dotted keys in them.

`train.lr` names `{"train": {"lr": 0.1}}["train"]["lr"]`. A key naming a mapping stands for
the whole mapping: a stage that lists `train` depends on every value below it, and mlv.lock
records that mapping as it was.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mlv import yamlio
from mlv.core.pipeline.spec import ParamRef
from mlv.errors import PipelineError

MISSING = object()


def read_file(root: str, rel: str) -> dict[str, Any]:
    """The parsed content of a parameters file: a mapping, {} when the file is absent."""
    try:
        with open(os.path.join(root, rel), "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return {}
    return parse(data, rel)


def parse(data: bytes | str, rel: str) -> dict[str, Any]:
    is_json = rel.endswith(".json")
    try:
        doc = json.loads(data) if is_json else yamlio.loads(data)
    except (ValueError, yamlio.YAMLError):
        raise PipelineError(f"{rel}: not valid {'JSON' if is_json else 'YAML'}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PipelineError(f"{rel}: expected a mapping of parameters")
    return doc


def lookup(doc: dict[str, Any], key: str) -> Any:
    """The value at a dotted key, or MISSING."""
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf value by dotted key ({"a": {"b": 1}} -> {"a.b": 1})."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def values(root: str, ref: ParamRef) -> dict[str, Any]:
    """The values a stage depends on in one file (every top-level key when none are named).
    A key that the file lacks is an error naming the file and key."""
    return values_in(read_file(root, ref.file), ref)


def values_in(doc: dict[str, Any], ref: ParamRef) -> dict[str, Any]:
    """values() of an already parsed file."""
    if not ref.keys:
        return dict(doc)
    found: dict[str, Any] = {}
    for key in ref.keys:
        value = lookup(doc, key)
        if value is MISSING:
            raise PipelineError(
                f"{ref.file}: no parameter '{key}'", f"add it to {ref.file} or fix the stage"
            )
        found[key] = value
    return found
