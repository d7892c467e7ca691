"""`mlv unprotect`: swap linked workspace files (hardlink/symlink into the cache, read-only)
for writable copies, so they can be edited without touching the cache."""

from __future__ import annotations

import os
import stat as stat_mod

from mlv.core import safepaths, targets
from mlv.core.repo import Repo
from mlv.objects.names import is_git_name
from mlv.util import localfs


def _writable_copy(path: str) -> bool:
    """Replace path by a private writable copy if it is a link or read-only; True if done."""
    st = os.lstat(path)
    if stat_mod.S_ISLNK(st.st_mode) or st.st_nlink > 1 or not st.st_mode & stat_mod.S_IWUSR:
        tmp = localfs.tmp_name(path)
        try:
            localfs.copy_to_new(path, tmp, 0o666, reflink=False)
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
        return True
    return False


def unprotect_path(repo: Repo, rel: str) -> list[str]:
    """Unprotect every file at or below rel; returns those that were replaced."""
    safepaths.check_data(repo.root, rel)  # never a copy written through a link
    done: list[str] = []
    top = repo.abs(rel)
    if os.path.isdir(top) and not os.path.islink(top):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not is_git_name(d)]  # never tracked (see the scanner)
            for name in sorted(files):
                if is_git_name(name):
                    continue
                path = os.path.join(folder, name)
                if _writable_copy(path):
                    done.append(repo.rel(path))
    elif os.path.lexists(top) and _writable_copy(top):
        done.append(rel)
    return done


def unprotect(repo: Repo, paths: list[str]) -> list[str]:
    with repo.lock():
        chosen = targets.resolve(repo, paths)
        done: list[str] = []
        for t in chosen:
            done.extend(unprotect_path(repo, t.rel))
        return done
