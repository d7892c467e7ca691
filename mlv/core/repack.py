"""`mlv remote repack NAME`: pack the small loose objects of a remote (mlv 0.1's, or those
pushed with `pack_threshold 0`), the one way such a remote becomes fully packed
(docs/design/packs.md, "gc -r: repacking"). The remote-side work is in
mlv/objects/packs/repack.py; this opens the remote, takes its lock and reports."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

from mlv.core.progress import NullProgress, Progress
from mlv.core.remotes import open_remote
from mlv.core.repo import Repo
from mlv.errors import UsageError
from mlv.objects.packs import repack


@dataclass(frozen=True, kw_only=True)
class RepackOptions:
    dry_run: bool = False
    jobs: int | None = None


@dataclass
class RepackReport:
    """What repack did (with dry_run: would do)."""

    name: str
    url: str
    dry_run: bool
    packed: int = 0  # objects now in packs
    bytes: int = 0
    packs: int = 0  # packs written (dry run: about)
    deleted: int = 0  # loose copies deleted
    large: int = 0  # loose objects at or above the threshold, left loose
    remaining: int = 0  # small loose objects still there afterwards
    marker_written: bool = False  # the marker's loose-small turned false
    corrupt: dict[str, str] = field(default_factory=dict)  # hash -> what its bytes hash to
    failed: dict[str, str] = field(default_factory=dict)  # hash -> reason
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.corrupt


def run_repack(
    repo: Repo, name: str | None, options: RepackOptions, progress: Progress | None = None
) -> RepackReport:
    """Pack remote name's loose objects below its pack_threshold, under its gc lock (a dry
    run takes no lock and writes nothing)."""
    progress = progress or NullProgress()
    store = open_remote(repo, name, options.jobs)
    try:
        report = RepackReport(store.name, store.url, options.dry_run)
        if store.read_only:
            raise UsageError(
                f"remote '{store.name}' ({store.url}) is read-only: it cannot be repacked",
                "repack it through a URL that can write (a folder, s3://, ssh://)",
            )
        if store.packing.threshold <= 0:
            raise UsageError(
                f"remote '{store.name}' has pack_threshold 0: nothing would be packed",
                f"set one first: `mlv remote modify {store.name} pack_threshold 4MiB`",
            )
        if options.dry_run:
            todo = repack.plan(store)
            report.packed, report.bytes = len(todo.pack), todo.nbytes
            report.packs = todo.estimated_packs(store.packing.size) if todo.pack else 0
            report.deleted = len(todo.pack) + len(todo.packed)
            report.large = todo.large
            report.warnings += store.warnings
            return report
        held = repack.lock(store, f"mlv remote repack {store.name}")
        try:
            todo = repack.plan(store)  # listed under the lock
            report.large = todo.large
            if not (todo.pack or todo.packed or todo.marker_loose_small):
                report.warnings += store.warnings
                return report  # packed already
            os.makedirs(repo.cache.tmp_dir, exist_ok=True)
            scratch = tempfile.mkdtemp(prefix="repack-", dir=repo.cache.tmp_dir)
            progress.begin(f"repack {store.name}", len(todo.pack))
            try:
                done = repack.run(store, todo, scratch, held, lambda n: progress.advance(1, n))
            finally:
                progress.end()
                shutil.rmtree(scratch, ignore_errors=True)
        finally:
            held.release()
        report.packed, report.bytes, report.packs = done.packed, done.nbytes, done.packs
        report.deleted, report.remaining = done.deleted, done.remaining
        report.marker_written = done.marker_written
        report.corrupt, report.failed = done.corrupt, done.failed
        report.warnings += store.warnings
        return report
    finally:
        store.close()
