"""Pack files, version 1: a header, objects' bytes (padded only to align a chunk), a trailer.

The byte layout is specified in docs/formats.md ("Remote format version 1"). A pack read from
a remote is hostile input: `footer_span` and `parse_trailer` check every field before an
entry is used, so a damaged or malicious pack is refused with `PackFormatError` instead of
being trusted or making mlv allocate what a header claims.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from mlv.objects import hashing

MAGIC = b"\x89MLVPACK"
END_MAGIC = b"\x89MLVPEND"
VERSION = 1
HEADER_SIZE = 32
FOOTER_SIZE = 40
ALGO_CODES = {"xxh128": 1, "sha256": 2}
HASH_SIZES = {"xxh128": 16, "sha256": 32}
KIND_FILE, KIND_TREE, KIND_CHUNKS = 0, 1, 2
CODEC_RAW, CODEC_ZSTD = 0, 1
CONTENTS_DATA, CONTENTS_TREES = 0, 1
MAX_PACK_WRITE = 1 << 30  # a writer never makes a bigger pack
MAX_PACK_READ = 1 << 32  # a reader refuses a pack (or index row) claiming more
MAX_PACKED_OBJECT = 64 << 20  # kinds 0/1 objects in a pack are at most this long
PAGE = 4096  # a raw chunk may be padded to sit at its file offset modulo this

ALGO_BY_CODE = {code: algo for algo, code in ALGO_CODES.items()}
HEADER = struct.Struct("<8sHBBI16s")  # magic, version, algo, contents, reserved, nonce
FOOTER = struct.Struct("<QQ16s8s")  # N, T, XXH3-128 of the trailer, end magic
# hash, pack number, offset, stored length, codec, kind, reserved, length
ENTRY_FORMATS = {"xxh128": "<16sIIIBBHQ", "sha256": "<32sIIIBBHQ"}
ENTRY_STRUCTS = {algo: struct.Struct(fmt) for algo, fmt in ENTRY_FORMATS.items()}


class PackFormatError(ValueError):
    """A pack or index that breaks the format; str() says what, in a few words."""


@dataclass(frozen=True, slots=True)
class Entry:
    hash: str  # "xxh128:..." hash id
    offset: int  # of the stored bytes in the pack
    stored: int  # stored length
    length: int  # the object's length
    codec: int = CODEC_RAW
    kind: int = KIND_FILE


@dataclass(frozen=True)
class Pack:
    name: str  # 32 lower-case hex: xxh3-128 of the whole pack file
    size: int  # bytes
    algo: str
    contents: int
    entries: tuple[Entry, ...]  # sorted by hash bytes


def entry_size(algo: str) -> int:
    """Bytes per entry: the hash's size plus 24 (40 for xxh128, 56 for sha256)."""
    return HASH_SIZES[algo] + 24


def raw_hash(algo: str, hash_id: str) -> bytes:
    """The raw bytes of a hash id of `algo`; ValueError for another algorithm or a bad id."""
    if not hashing.is_hash(hash_id) or hashing.algorithm_of(hash_id) != algo:
        raise ValueError(f"{hash_id!r} is not a {algo} hash id")
    return bytes.fromhex(hashing.split(hash_id)[1])


def pack_entry(algo: str, raw: bytes, pack_number: int, entry: Entry) -> bytes:
    """One entry's bytes in the entry layout shared by trailers and indexes."""
    return ENTRY_STRUCTS[algo].pack(
        raw, pack_number, entry.offset, entry.stored, entry.codec, entry.kind, 0, entry.length
    )


def check_entry_rows(
    algo: str,
    entries: bytes | memoryview,
    ends: Sequence[int],
    counts: list[int] | None = None,
) -> None:
    """Check a sorted entry table in one pass: order, pack numbers, reserved bytes, bounds.

    `ends[p]` is where pack p's body ends (the trailer's offset), so a range past it is
    refused; `counts`, when given, receives the number of entries per first hash byte (the
    index's fanout). Ranges within one pack must not overlap, and every pack must be named
    by at least one entry. Unknown codec and kind values pass: a newer mlv's, the reader
    decides what to do with such an object.
    """
    npacks = len(ends)
    prev = b""
    keys: list[int] = []
    append = keys.append
    for raw, p, offset, stored, codec, kind, reserved, length in ENTRY_STRUCTS[algo].iter_unpack(
        entries
    ):
        if raw <= prev:
            raise PackFormatError("entries not strictly increasing by hash")
        prev = raw
        if p >= npacks:
            raise PackFormatError(f"pack number {p} out of range")
        if reserved:
            raise PackFormatError("reserved entry bytes not zero")
        if offset < HEADER_SIZE:
            raise PackFormatError("entry offset inside the pack header")
        end = offset + stored
        if end > ends[p]:
            raise PackFormatError("entry range past the pack's body")
        if kind < KIND_CHUNKS:
            if length > MAX_PACKED_OBJECT:
                raise PackFormatError("packed object longer than 64 MiB")
            if codec == CODEC_RAW and stored != length:
                raise PackFormatError("raw entry's stored length differs from its length")
        elif kind == KIND_CHUNKS and stored > MAX_PACKED_OBJECT:
            raise PackFormatError("chunk list longer than 64 MiB")
        if counts is not None:
            counts[raw[0]] += 1
        append((p << 64) | (offset << 32) | stored)
    keys.sort()
    mask = (1 << 32) - 1
    prev_pack = -1
    prev_end = 0
    for key in keys:
        p = key >> 64
        offset = (key >> 32) & mask
        if p != prev_pack:
            if p != prev_pack + 1:
                raise PackFormatError(f"pack {prev_pack + 1} not named by any entry")
            prev_pack = p
        elif offset < prev_end:
            raise PackFormatError("overlapping entry ranges")
        prev_end = offset + (key & mask)
    if prev_pack != npacks - 1:
        raise PackFormatError(f"pack {prev_pack + 1} not named by any entry")


def footer_span(header: bytes, footer: bytes, pack_size: int) -> tuple[str, int, int]:
    """From a pack's first 32 bytes and last 40: (algo, T = trailer offset, N).

    Checks magics, version, algo code, reserved zero, T >= 32, T + E*N + 40 == pack_size and
    pack_size <= MAX_PACK_READ, by arithmetic, so nothing is allocated for a claimed count.
    """
    if pack_size > MAX_PACK_READ:
        raise PackFormatError("pack larger than 4 GiB")
    if len(header) != HEADER_SIZE or len(footer) != FOOTER_SIZE:
        raise PackFormatError("truncated pack")
    if pack_size < HEADER_SIZE + FOOTER_SIZE:
        raise PackFormatError("truncated pack")
    magic, version, code, _contents, reserved, _nonce = HEADER.unpack(header)
    if magic != MAGIC:
        raise PackFormatError("not a pack (wrong magic)")
    if version != VERSION:
        raise PackFormatError(f"pack format version {version} is not supported")
    algo = ALGO_BY_CODE.get(code)
    if algo is None:
        raise PackFormatError(f"unknown hash algorithm code {code}")
    if reserved:
        raise PackFormatError("reserved header bytes not zero")
    count, trailer_offset, _checksum, end_magic = FOOTER.unpack(footer)
    if end_magic != END_MAGIC:
        raise PackFormatError("not a pack (wrong end magic)")
    if trailer_offset < HEADER_SIZE:
        raise PackFormatError("trailer offset inside the header")
    if trailer_offset + entry_size(algo) * count + FOOTER_SIZE != pack_size:
        raise PackFormatError("entry count and trailer offset disagree with the pack size")
    return algo, trailer_offset, count


def parse_trailer(
    algo: str, trailer: bytes, trailer_offset: int, count: int, checksum: bytes
) -> tuple[Entry, ...]:
    """The pack's entries from its trailer (bytes T .. end-40), every field checked.

    `checksum` is the footer's XXH3-128 field. Entries must be strictly increasing by hash,
    name pack 0, have zero reserved bytes, lie inside [32, T) without overlapping, and keep
    the length rules (raw: stored == length; kinds 0/1 at most MAX_PACKED_OBJECT).
    """
    size = entry_size(algo)
    if len(trailer) != size * count:
        raise PackFormatError("trailer size disagrees with the entry count")
    if hashing.fingerprint(trailer) != checksum:
        raise PackFormatError("trailer checksum mismatch")
    check_entry_rows(algo, trailer, (trailer_offset,) if count else ())
    return tuple(
        Entry(f"{algo}:{raw.hex()}", offset, stored, length, codec, kind)
        for raw, _p, offset, stored, codec, kind, _r, length in ENTRY_STRUCTS[algo].iter_unpack(
            trailer
        )
    )


def read_pack_file(path: str | os.PathLike[str], name: str | None = None) -> Pack:
    """Parse and check a whole local pack file; its name is the XXH3-128 of its bytes.

    With `name` (the name the pack was found under), a pack whose bytes hash otherwise is
    refused. The file is hashed in a stream and only its header, trailer and footer are read.
    """
    with open(path, "rb") as f:
        pack_size = os.fstat(f.fileno()).st_size
        if pack_size > MAX_PACK_READ:
            raise PackFormatError("pack larger than 4 GiB")
        header = f.read(HEADER_SIZE)
        f.seek(max(pack_size - FOOTER_SIZE, 0))
        footer = f.read(FOOTER_SIZE)
        algo, trailer_offset, count = footer_span(header, footer, pack_size)
        f.seek(trailer_offset)
        trailer = f.read(pack_size - FOOTER_SIZE - trailer_offset)
        entries = parse_trailer(algo, trailer, trailer_offset, count, footer[16:32])
        f.seek(0)
        digest, hashed = hashing.hash_fd("xxh128", f.fileno())
    actual = hashing.split(digest)[1]
    if hashed != pack_size:
        raise PackFormatError("pack changed while it was read")
    if name is not None and actual != name:
        raise PackFormatError(f"pack bytes do not hash to its name {name}")
    return Pack(actual, pack_size, algo, header[11], entries)


class PackWriter:
    """Writes one pack into a local file, streaming: header (random 16-byte nonce via
    os.urandom), bodies back to back (zeros before a chunk only when `add` is asked to
    align it), trailer on finish; the pack's name is hashed while writing (no second
    read)."""

    def __init__(self, path: str, algo: str, contents: int = CONTENTS_DATA) -> None:
        if algo not in ALGO_CODES:
            raise ValueError(f"unknown hash algorithm {algo!r}")
        self.path = path
        self.algo = algo
        self.contents = contents
        self._entries: dict[str, Entry] = {}
        self._hasher = hashing.new_hasher("xxh128")
        self._file = open(path, "wb")  # noqa: SIM115 - closed by finish or abort
        self._size = 0
        self._done = False
        self._write(HEADER.pack(MAGIC, VERSION, ALGO_CODES[algo], contents, 0, os.urandom(16)))

    @property
    def size(self) -> int:
        """Bytes written so far (header and bodies); what finish adds is not counted."""
        return self._size

    @property
    def count(self) -> int:
        return len(self._entries)

    def _write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._hasher.update(data)
        self._size += len(data)

    def add(
        self,
        hash_id: str,
        data: bytes,
        kind: int = KIND_FILE,
        length: int | None = None,
        codec: int = CODEC_RAW,
        align: int | None = None,
    ) -> Entry:
        """Append one object's stored bytes, encoded with codec (codec.py chose it). A hash
        already in this pack is not written twice: its first entry is returned. length: the
        object's length when it is not len(data) (a compressed object: its length before
        compression; a chunk list: the length of the whole object it rebuilds).

        align: a raw chunk's offset in its file. Zeros (fewer than PAGE) go before it so
        that its offset in the pack equals that one modulo PAGE: the kernel then copies a
        run of chunks from a folder remote page for page into the file being rebuilt
        (copy_file_range between misaligned offsets costs 1.5x). Consecutive chunks of one
        file need no zeros after the first."""
        if self._done:
            raise ValueError("pack already finished")
        if codec != CODEC_RAW and length is None:
            raise ValueError(f"{hash_id}: an encoded object needs its length")
        raw_hash(self.algo, hash_id)
        first = self._entries.get(hash_id)
        if first is not None:
            return first
        if len(data) > MAX_PACKED_OBJECT:
            raise ValueError(f"{hash_id}: {len(data)} bytes is more than a pack holds per object")
        pad = (align - self._size) % PAGE if align is not None and codec == CODEC_RAW else 0
        after = self._size + pad + len(data) + entry_size(self.algo) * (len(self._entries) + 1)
        if after + FOOTER_SIZE > MAX_PACK_WRITE:
            raise ValueError("pack full: start another pack")
        whole = len(data) if length is None else length
        if pad:
            self._write(bytes(pad))
        entry = Entry(hash_id, self._size, len(data), whole, codec, kind)
        self._write(data)
        self._entries[hash_id] = entry
        return entry

    def finish(self) -> Pack:
        """Write the trailer (entries sorted by hash, pack number 0) and footer, close."""
        if self._done:
            raise ValueError("pack already finished")
        entries = tuple(sorted(self._entries.values(), key=lambda e: e.hash))
        trailer_offset = self._size
        trailer = b"".join(
            pack_entry(self.algo, raw_hash(self.algo, e.hash), 0, e) for e in entries
        )
        self._write(trailer)
        self._write(
            FOOTER.pack(len(entries), trailer_offset, hashing.fingerprint(trailer), END_MAGIC)
        )
        self._file.close()
        self._done = True
        return Pack(self._hasher.hexdigest(), self._size, self.algo, self.contents, entries)

    def abort(self) -> None:
        """Close and delete the file (a pack that will not be finished)."""
        self._done = True
        self._file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._done:
            self.abort()
