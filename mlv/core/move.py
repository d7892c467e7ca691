"""`mlv mv`: move tracked data and its pointer together, keeping git's view in step.

Stage outs (recorded in mlv.lock) are refused: their path is mlv.yaml's to change."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from mlv import git
from mlv.core import gitignore, safepaths, targets
from mlv.core.repo import Repo
from mlv.errors import UsageError, rpath
from mlv.objects import pointer as pointer_mod
from mlv.objects.pointer import SUFFIX


@dataclass(frozen=True)
class Moved:
    src: str
    dst: str
    pointer: str


def move(repo: Repo, src: str, dst: str) -> Moved:
    with repo.lock():
        known = targets.all_targets(repo)
        chosen = targets.resolve(repo, [src], known)
        if len(chosen) != 1:
            raise UsageError(
                f"{src}: holds {len(chosen)} tracked paths",
                "mv moves one tracked path (or its .mlv file) at a time",
            )
        t = chosen[0]
        if t.pointer_rel == targets.LOCK_FILE:
            hint = "to move it, change its path in the outs of stage '{stage}' in mlv.yaml"
            raise targets.stage_out_refusal(repo, src, t.rel, hint)
        if t.sub:
            raise UsageError(
                f"{src}: is inside tracked directory {rpath(t.data_rel)}",
                "move the whole tracked directory",
            )
        safepaths.check_parents(repo.root, t.data_rel)  # never move out through a link
        dst_rel = repo.rel(dst)
        if dst.endswith("/") and not os.path.isdir(repo.abs(dst_rel)):
            raise UsageError(f"{dst}: no such folder", "create it first, or drop the final /")
        if os.path.isdir(repo.abs(dst_rel)) and not os.path.islink(repo.abs(dst_rel)):
            name = t.data_rel.rpartition("/")[2]
            dst_rel = f"{dst_rel}/{name}" if dst_rel else name
        if dst_rel == "":
            raise UsageError(f"{dst}: not a place mlv can track data")
        targets.refuse_unwritable(dst, dst_rel)
        if os.path.lexists(repo.abs(dst_rel)) or os.path.lexists(repo.abs(dst_rel + SUFFIX)):
            raise UsageError(f"{dst}: already exists", "choose another name or remove it first")
        owner = targets.owner_of(dst_rel, known)
        if owner is not None:
            raise UsageError(
                f"{dst}: inside tracked directory {rpath(owner.data_rel)}",
                f"move it elsewhere, or copy it into {rpath(owner.data_rel)} and run "
                f"`mlv commit {rpath(owner.data_rel)}`",
            )
        safepaths.check_parents(repo.root, dst_rel)
        os.makedirs(os.path.dirname(repo.abs(dst_rel)), exist_ok=True)
        if os.path.lexists(repo.abs(t.data_rel)):
            os.rename(repo.abs(t.data_rel), repo.abs(dst_rel))
        new_ptr = replace(t.pointer, path=dst_rel.rpartition("/")[2])
        new_pointer_rel = dst_rel + SUFFIX
        pointer_mod.write(repo.abs(new_pointer_rel), new_ptr)
        os.unlink(repo.abs(t.pointer_rel))
        repo.state.forget_folder_tree(t.data_rel)
        old_ignore = gitignore.remove_entry(repo.root, t.data_rel)
        new_ignore = gitignore.add_entry(repo.root, dst_rel)
        if repo.scm:
            git.remove_cached(repo.root, [t.pointer_rel])
            stage = [new_pointer_rel]
            for f in (old_ignore, new_ignore):
                if f and os.path.exists(repo.abs(f)):
                    stage.append(f)
                elif f:
                    git.remove_cached(repo.root, [f])
            git.add(repo.root, stage)
        return Moved(t.data_rel, dst_rel, new_pointer_rel)
