"""Codecs of packed entries (docs/formats.md, "Codecs and kinds"): when push compresses, and
how a reader undoes it without trusting the stored bytes.

Codec 0 is raw; codec 1 is one zstd frame with the object's length in its header. Push
stores zstd only when it saves at least 10%; a reader decompresses with an output limit of
the entry's length, so a frame that claims or makes more is refused before any allocation
larger than the entry's (bounded) length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import zstandard

from mlv.objects.packs.packfile import CODEC_RAW, CODEC_ZSTD

# Measured here (one core, zstandard 0.25, 146 KiB pieces, the mean chunk size):
#   level  random bytes   gaussian float32 weights   CSV of numbers
#   1      7.0 GB/s       1.29 GB/s, saves 7.4%       394 MB/s, saves 62%
#   3      5.6 GB/s       1.23 GB/s, saves 7.4%       230 MB/s, saves 58%
# Level 1: as small as level 3 on text here, faster everywhere. Random bytes cost little at
# any level (zstd sees they do not compress), but weights are compressed at ~1.2 GB/s only
# to be stored raw (7% < 10%): so an object is probed on its first PROBE bytes, and the
# chunks of one large object stop being tried after one does not pay, tried again after
# 1, 2, 4 ... MAX_SKIP chunks (so a file whose head compresses but whose body does not
# costs about one chunk in MAX_SKIP). Push of a fresh 512 MiB file to a folder remote,
# compression on vs off, alternating runs (medians of 6-8): random bytes 0.56 s vs 0.56 s;
# gaussian float32 weights 0.59 s vs 0.60 s (stored raw either way).
LEVEL = 1
PROBE = 64 << 10
MIN_SIZE = 64  # smaller objects are not worth a frame header
SAVING = 0.10  # compressed only when it saves at least this fraction
MAX_SKIP = 64
MAX_WINDOW = 1 << 27  # a frame asking for a larger window is refused (zstd's own default)


class CodecError(ValueError):
    """Stored bytes that do not decode to the entry's object; str() says why, briefly."""


def _pays(stored: int, length: int) -> bool:
    return stored <= length * (1 - SAVING)


@dataclass
class Compressor:
    """Chooses each piece's codec. One object per push; `new_object` before the chunks of
    each large object (pieces given without it are each their own object)."""

    enabled: bool = True
    _cctx: zstandard.ZstdCompressor = field(
        default_factory=lambda: zstandard.ZstdCompressor(level=LEVEL), repr=False
    )
    _skip: int = 0  # pieces of the current object still stored raw without trying
    _backoff: int = 0

    def new_object(self) -> None:
        self._skip = self._backoff = 0

    def encode(self, data: bytes) -> tuple[int, bytes]:
        """(codec, stored bytes) for one piece: zstd when it saves at least 10%, else raw."""
        if not self.enabled or len(data) < MIN_SIZE:
            return CODEC_RAW, data
        if self._skip:
            self._skip -= 1
            return CODEC_RAW, data
        if len(data) > 2 * PROBE and not _pays(len(self._cctx.compress(data[:PROBE])), PROBE):
            return self._gave_up(data)
        stored = self._cctx.compress(data)
        if not _pays(len(stored), len(data)):
            return self._gave_up(data)
        self._backoff = 0
        return CODEC_ZSTD, stored

    def _gave_up(self, data: bytes) -> tuple[int, bytes]:
        self._backoff = min(max(1, 2 * self._backoff), MAX_SKIP)
        self._skip = self._backoff
        return CODEC_RAW, data


def decode(codec: int, stored: bytes, length: int) -> bytes:
    """The object from an entry's stored bytes: exactly `length` bytes, or CodecError.

    A zstd frame must state its content size, equal to length, before anything is
    decompressed; decompression is capped at length and must end exactly at the frame's
    end. The caller still checks the result against the entry's hash."""
    if codec == CODEC_RAW:
        if len(stored) != length:
            raise CodecError(f"{len(stored)} raw bytes where the index says {length}")
        return stored
    if codec != CODEC_ZSTD:
        raise CodecError(f"unknown codec {codec}")
    try:
        params = zstandard.get_frame_parameters(stored)
    except zstandard.ZstdError as e:
        raise CodecError(f"not a zstd frame: {e}") from None
    if params.content_size != length:
        claimed = (
            "no size"
            if params.content_size == zstandard.CONTENTSIZE_UNKNOWN
            else str(params.content_size)
        )
        raise CodecError(f"zstd frame claims {claimed} bytes where the index says {length}")
    if params.dict_id:
        raise CodecError("zstd frame needs a dictionary")
    if params.window_size > MAX_WINDOW:
        raise CodecError(f"zstd frame asks for a {params.window_size}-byte window")
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    try:
        data = dctx.decompress(stored, max_output_size=length, allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise CodecError(f"zstd frame does not decode: {e}") from None
    if len(data) != length:
        raise CodecError(f"zstd frame gives {len(data)} bytes where the index says {length}")
    return data
