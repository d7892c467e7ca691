"""Where a packed remote keeps what (docs/formats.md, remote format version 1).

Keys beside the loose objects (ALGO/HEX[:2]/HEX[2:]): the format marker, packs sharded by
the first two hex digits of their name, indexes flat under index/ (so one listing says which
exist), and advisory locks. None of these parse as an object key, so mlv 0.1 ignores them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MARKER_KEY = "mlv-remote.json"
PACKS = "packs/"
INDEXES = "index/"
LOCKS = "locks/"
FORMAT_VERSION = 1

_NAME = re.compile(r"[0-9a-f]{32}")


def pack_key(name: str) -> str:
    return f"{PACKS}{name[:2]}/{name}.pack"


def index_key(name: str) -> str:
    return f"{INDEXES}{name}.idx"


def pack_name_of(key: str) -> str | None:
    """The name of the pack stored at key, or None for a key that is not a pack's."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != PACKS or not parts[2].endswith(".pack"):
        return None
    name = parts[2][: -len(".pack")]
    return name if _NAME.fullmatch(name) and parts[1] == name[:2] else None


def index_name_of(key: str) -> str | None:
    """The name of the index stored at key, or None (other keys under index/ are ignored)."""
    if not key.startswith(INDEXES) or not key.endswith(".idx"):
        return None
    name = key[len(INDEXES) : -len(".idx")]
    return name if _NAME.fullmatch(name) else None


class MarkerError(ValueError):
    """A marker this mlv cannot use: a newer version, or not a marker at all."""


@dataclass(frozen=True)
class Marker:
    """mlv-remote.json: the remote's format version, and whether small objects may be
    loose (a remote that held loose objects when it was first packed)."""

    version: int = FORMAT_VERSION
    loose_small: bool = False

    def encode(self) -> bytes:
        # Canonical bytes: two first writers of one remote write the same file.
        flag = "true" if self.loose_small else "false"
        return f'{{"mlv-remote":{self.version},"loose-small":{flag}}}'.encode()

    @classmethod
    def parse(cls, data: bytes) -> Marker:
        if len(data) > 4096:
            raise MarkerError("mlv-remote.json is not a format marker (too long)")
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MarkerError("mlv-remote.json is not valid JSON") from None
        if not isinstance(doc, dict):
            raise MarkerError("mlv-remote.json is not a JSON object")
        version = doc.get("mlv-remote")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MarkerError("mlv-remote.json has no valid 'mlv-remote' version")
        if version > FORMAT_VERSION:
            raise MarkerError(
                f"format version {version}, newer than this mlv understands "
                f"(version {FORMAT_VERSION})"
            )
        unknown = set(doc) - {"mlv-remote", "loose-small"}
        if unknown:
            raise MarkerError(f"mlv-remote.json has unknown keys: {', '.join(sorted(unknown))}")
        loose = doc.get("loose-small", False)
        if not isinstance(loose, bool):
            raise MarkerError("mlv-remote.json: 'loose-small' must be true or false")
        return cls(version, loose)
