"""`mlv rm`: stop tracking a path. The pointer and its .gitignore line go; the data stays
(as plain writable files, so it survives a later gc), or is deleted too with outs=True.
Stage outs (recorded in mlv.lock) are refused: mlv.yaml says what a pipeline tracks."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from mlv import git
from mlv.core import gitignore, safepaths, targets
from mlv.core.repo import Repo
from mlv.core.unprotect import unprotect_path
from mlv.errors import UsageError, rpath

RM_HINT = "to stop tracking it, remove it from the outs of stage '{stage}' in mlv.yaml"


@dataclass(frozen=True)
class Removed:
    path: str
    pointer: str
    data_deleted: bool


def remove(repo: Repo, paths: list[str], outs: bool = False) -> list[Removed]:
    with repo.lock():
        chosen = targets.resolve(repo, paths)  # a broken pointer elsewhere does not block
        named = {repo.rel(p) for p in paths}
        for t in chosen:  # refused before anything is removed
            if t.pointer_rel == targets.LOCK_FILE and (t.rel in named or t.pointer_rel in named):
                raise targets.stage_out_refusal(repo, rpath(t.rel), t.rel, RM_HINT)
            safepaths.check_parents(repo.root, t.data_rel)  # nothing removed through a link
        done = []
        for t in chosen:
            if t.pointer_rel == targets.LOCK_FILE:
                continue  # a stage out below a folder named: mlv.yaml says what is tracked
            if t.sub:
                raise UsageError(
                    f"{rpath(t.rel)}: is inside tracked directory {rpath(t.data_rel)}",
                    f"remove the whole directory (`mlv rm {rpath(t.data_rel)}`), or add it to "
                    ".mlvignore and `mlv commit`",
                )
            data = repo.abs(t.data_rel)
            if outs:
                if os.path.isdir(data) and not os.path.islink(data):
                    shutil.rmtree(data)
                elif os.path.lexists(data):
                    os.unlink(data)
            elif os.path.lexists(data):
                unprotect_path(repo, t.data_rel)
            os.unlink(repo.abs(t.pointer_rel))
            repo.state.forget_folder_tree(t.data_rel)
            ignore_file = gitignore.remove_entry(repo.root, t.data_rel)
            if repo.scm:
                git.remove_cached(repo.root, [t.pointer_rel])
                if ignore_file:
                    if os.path.exists(repo.abs(ignore_file)):
                        git.add(repo.root, [ignore_file])
                    else:
                        git.remove_cached(repo.root, [ignore_file])
            done.append(Removed(t.data_rel, t.pointer_rel, outs))
        return done
