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
from mlv.core.workspace import refuse_link_out
from mlv.errors import PipelineError, rpath
from mlv.util import localfs

MISSING = object()


def read_file(root: str, rel: str) -> dict[str, Any] | None:
    """The parsed content of a parameters file: a mapping, None when the file is absent."""
    try:
        refuse_link_out(root, rel)  # a clone's params.yaml -> ~/.config/gh/hosts.yml
        data = localfs.read_small(os.path.join(root, rel))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise PipelineError(
            f"{rpath(rel)} is a folder, not a parameters file",
            f"move it away and write the parameters into a file named {rpath(rel)}",
        ) from None
    except OSError as e:
        raise PipelineError(
            f"{rpath(rel)}: cannot read it ({e.strerror})", "make it a readable parameters file"
        ) from None
    return parse(data, rel)


def parse(data: bytes | str, rel: str) -> dict[str, Any]:
    is_json = rel.endswith(".json")
    try:
        doc = yamlio.loads_json(data) if is_json else yamlio.loads(data)
    except yamlio.LimitError as e:
        raise PipelineError(
            f"{rpath(rel)}: {e}", "fix the file or restore it with `git checkout`"
        ) from None
    except (ValueError, yamlio.YAMLError):
        raise PipelineError(f"{rpath(rel)}: not valid {'JSON' if is_json else 'YAML'}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PipelineError(f"{rpath(rel)}: expected a mapping of parameters")
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


def values_in(doc: dict[str, Any] | None, ref: ParamRef) -> dict[str, Any]:
    """values() of an already parsed file (None: the file does not exist)."""
    if doc is None:
        if not ref.keys:
            return {}
        keys = ("key " if len(ref.keys) == 1 else "keys ") + ", ".join(ref.keys)
        raise PipelineError(
            f"parameters file {rpath(ref.file)} does not exist",
            f"create it with the {keys}, or fix the stage's params in mlv.yaml",
        )
    if not ref.keys:
        return dict(doc)
    found: dict[str, Any] = {}
    for key in ref.keys:
        value = lookup(doc, key)
        if value is MISSING:
            raise PipelineError(
                f"{rpath(ref.file)}: no parameter '{key}'",
                f"add it to {rpath(ref.file)} or fix the stage",
            )
        found[key] = value
    return found


def canonical(value: Any) -> str:
    """A text that two values share only when they are the same parameter value, type
    included: 0, False, 0.0 and "0" all differ (Python's == says 0 == False == 0.0), and
    NaN equals NaN (== says it never does). Mappings compare whatever their key order."""
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return json.dumps(value) if value == value else "NaN"  # every NaN is one value
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(canonical(k) + ":" + canonical(v) for k, v in value.items())
        return "{" + ",".join(items) + "}"
    # dates, timestamps, sets, bytes: typed, so that no string can be equal to them
    return "!" + type(value).__name__ + json.dumps(str(value), ensure_ascii=False)


def same(a: Any, b: Any) -> bool:
    """a and b are the same parameter value (see canonical)."""
    return canonical(a) == canonical(b)
