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


def dumps(data: Any) -> str:
    """Block-style YAML in insertion order, readable in a git diff."""
    return yaml.dump(
        data, Dumper=_Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True
    )
