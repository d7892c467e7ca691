"""Which byte ranges of a pack to ask for, given the objects wanted from it.

Each request costs a round trip, the bytes between two wanted objects only bandwidth: so
neighbours closer than GAP are read as one range (the gap thrown away), and when the
ranges would cover most of the pack, the whole pack is read in one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Defaults decided by measurement (docs/performance.md, "Packed remotes").
GAP = 1 << 20
WHOLE_SHARE = 0.5
# One merged range is at most this long, so that no single read holds more in memory.
MAX_SPAN = 64 << 20


@dataclass(frozen=True)
class Span:
    """One read: [start, start + length) of a pack, and the wanted objects inside it as
    (hash id, offset in the pack, stored length)."""

    start: int
    length: int
    members: tuple[tuple[str, int, int], ...]


def plan(
    wanted: Sequence[tuple[str, int, int]],
    pack_size: int,
    gap: int = GAP,
    whole_share: float = WHOLE_SHARE,
) -> list[Span]:
    """Reads that cover every wanted (hash id, offset, stored) of one pack."""
    ordered = sorted(set(wanted), key=lambda w: (w[1], w[2]))
    if not ordered:
        return []
    spans: list[Span] = []
    members: list[tuple[str, int, int]] = [ordered[0]]
    start, end = ordered[0][1], ordered[0][1] + ordered[0][2]
    for item in ordered[1:]:
        _, offset, stored = item
        if offset - end <= gap and max(end, offset + stored) - start <= MAX_SPAN:
            members.append(item)
            end = max(end, offset + stored)
            continue
        spans.append(Span(start, end - start, tuple(members)))
        members, start, end = [item], offset, offset + stored
    spans.append(Span(start, end - start, tuple(members)))
    covered = sum(s.length for s in spans)
    if len(spans) > 1 and covered >= whole_share * pack_size and pack_size <= MAX_SPAN:
        first = min(s.start for s in spans)
        last = max(s.start + s.length for s in spans)
        return [Span(first, last - first, tuple(ordered))]
    return spans


def cut(span: Span, data: bytes) -> dict[str, bytes]:
    """The wanted objects' stored bytes out of one span's data (None-free: a short read
    leaves the objects it does not cover out)."""
    out = {}
    view = memoryview(data)
    for h, offset, stored in span.members:
        lo = offset - span.start
        if lo + stored <= len(data):
            out[h] = bytes(view[lo : lo + stored])
    return out
