"""`mlv install`: git hooks that keep the data in step with git.

- post-checkout runs `mlv checkout` after a branch checkout, so the workspace data follows
  the pointers git just wrote. It never fails the git command; when objects are missing
  from the cache it says to run `mlv pull`.
- pre-push runs `mlv push --rev SHA...` for every commit being pushed; a failure stops the
  git push (`git push --no-verify` skips it). With no mlv remote configured it only notes
  that no data was pushed.
- pre-commit warns when tracked data was changed without `mlv commit`; it never blocks.

The hooks are POSIX sh scripts with a marker line. They run mlv with the interpreter that
ran `mlv install` (its path is written into them), or the `mlv` on PATH when that
interpreter is gone. A hook that was there before is moved aside to `<hook>.pre-mlv` and
run first, with the same arguments and input; its failure still fails pre-commit and
pre-push, and its exit status stays the exit status of post-checkout. `--uninstall` puts it
back as it was (the file is renamed, never rewritten, so content and mode are kept).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field

from mlv import git
from mlv.core.repo import MLV_DIR
from mlv.errors import MlvError, NotARepoError, UsageError
from mlv.util import localfs

HOOKS = ("post-checkout", "pre-commit", "pre-push")
MARKER = "# mlv-hook: written by `mlv install`; remove with `mlv install --uninstall`"
SAVED_SUFFIX = ".pre-mlv"

# Actions reported per hook.
INSTALLED = "installed"  # written where there was none
UPDATED = "updated"  # an older mlv hook rewritten
UNCHANGED = "unchanged"  # already the hook mlv would write
CHAINED = "chained"  # written; the hook that was there moved to <hook>.pre-mlv, runs first
REMOVED = "removed"  # uninstall: mlv's hook deleted
RESTORED = "restored"  # uninstall: mlv's hook deleted, the earlier one put back
ABSENT = "absent"  # uninstall: no mlv hook there

# Runs mlv's entry point with the current folder taken off sys.path, so that a folder named
# `mlv` at the repository root can never stand in for the package (`python -m mlv` would
# import it). Exit 127 when this interpreter no longer has mlv: the hook then tries PATH.
_ENTRY = (
    "import sys; del sys.path[0]\n"
    "try:\n"
    "    from mlv.cli import main\n"
    "except ImportError:\n"
    "    sys.exit(127)\n"
    "main()\n"
)

_PRELUDE = """\
#!/bin/sh
{marker}
# {purpose}

mlv_python={python}
mlv_entry={entry}

run_mlv() {{
    if [ -x "$mlv_python" ]; then
        "$mlv_python" -c "$mlv_entry" "$@"
        mlv_status=$?
        [ "$mlv_status" -ne 127 ] && return "$mlv_status"
    fi
    if command -v mlv >/dev/null 2>&1; then
        command mlv "$@"
        return $?
    fi
    echo "mlv hook: mlv not found ($mlv_python is gone and no mlv on PATH)" >&2
    return 127
}}

earlier_hook="$0{saved}"
"""

_POST_CHECKOUT = """\
# Arguments: PREVIOUS-HEAD NEW-HEAD FLAG (1 for a branch checkout, 0 for files).
hook_status=0
if [ -x "$earlier_hook" ]; then
    "$earlier_hook" "$@"
    hook_status=$?
fi

# Only a branch checkout that moved HEAD changes the pointers; not in an mlv repository.
[ "$3" = 1 ] || exit "$hook_status"
[ "$1" = "$2" ] && exit "$hook_status"
[ -d {mlv_dir} ] || exit "$hook_status"

# In the middle of a rebase git checks out commits it is about to rewrite: leave the data
# alone and let the user run `mlv checkout` once the rebase is done.
git_dir=$(git rev-parse --git-dir 2>/dev/null) || exit "$hook_status"
if [ -d "$git_dir/rebase-merge" ] || [ -d "$git_dir/rebase-apply" ]; then
    echo "mlv: rebase in progress; run \\`mlv checkout\\` when it is done" >&2
    exit "$hook_status"
fi

if ! run_mlv checkout; then
    if run_mlv status --json 2>/dev/null | grep -q '"in_cache": false'; then
        echo "mlv: data of this commit is not in the cache: run \\`mlv pull\\` to get it" >&2
    else
        echo "mlv: the workspace data does not fully match this commit (see above)" >&2
    fi
fi
# Never fail the checkout because of mlv.
exit "$hook_status"
"""

_PRE_COMMIT = """\
if [ -x "$earlier_hook" ]; then
    "$earlier_hook" "$@" || exit $?
fi

[ -d {mlv_dir} ] || exit 0
changed=$(run_mlv status 2>/dev/null | grep '^modified ')
if [ -n "$changed" ]; then
    echo "mlv: warning: tracked data changed since its last \\`mlv commit\\`:" >&2
    printf '%s\\n' "$changed" | sed 's/^/    /' >&2
    echo "mlv: this git commit records the old pointers; run \\`mlv commit\\`" \\
        "(it stages the new pointers), then \\`git commit --amend\\`" >&2
fi
# A warning only: never block the commit.
exit 0
"""

_PRE_PUSH = """\
# Arguments: REMOTE-NAME URL; input: one line per ref,
# "LOCAL-REF LOCAL-SHA REMOTE-REF REMOTE-SHA". Both hooks get the same input.
refs=$(cat)
if [ -x "$earlier_hook" ]; then
    if [ -n "$refs" ]; then
        printf '%s\\n' "$refs" | "$earlier_hook" "$@"
    else
        "$earlier_hook" "$@" </dev/null
    fi
    hook_status=$?
    [ "$hook_status" -eq 0 ] || exit "$hook_status"
fi

[ -d {mlv_dir} ] || exit 0

# The commits being pushed; deletions (a local sha of zeros) and refs to non-commits skipped.
set -- push
while read -r local_ref local_sha remote_ref remote_sha; do
    case "$local_sha" in
        *[!0]*) ;;
        *) continue ;;
    esac
    git rev-parse -q --verify "$local_sha^{{commit}}" >/dev/null 2>&1 || continue
    set -- "$@" --rev "$local_sha"
done <<EOF
$refs
EOF
[ "$#" -gt 1 ] || exit 0

if ! remotes=$(run_mlv remote list); then
    echo "mlv: cannot read the mlv remotes, so git push was stopped;" \\
        "\\`git push --no-verify\\` pushes without the data" >&2
    exit 1
fi
if [ -z "$remotes" ]; then
    echo "mlv: no mlv remote configured, no data pushed (\\`mlv remote add -d NAME URL\\`)" >&2
    exit 0
fi

if ! run_mlv "$@"; then
    echo "mlv: pushing the tracked data failed (see above), so git push was stopped;" \\
        "fix it and push again, or \\`git push --no-verify\\` to push without the data" >&2
    exit 1
fi
exit 0
"""

_BODIES = {
    "post-checkout": (
        "post-checkout: make the workspace data follow the checkout (`mlv checkout`).",
        _POST_CHECKOUT,
    ),
    "pre-commit": (
        "pre-commit: warn when tracked data changed without `mlv commit` (never blocks).",
        _PRE_COMMIT,
    ),
    "pre-push": (
        "pre-push: push the data of the commits being pushed (`mlv push --rev`).",
        _PRE_PUSH,
    ),
}


@dataclass(frozen=True)
class HookAction:
    hook: str
    action: str  # one of the constants above


@dataclass
class HooksReport:
    hooks_dir: str  # absolute
    root: str  # the git work tree root
    actions: list[HookAction] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(a.action not in (UNCHANGED, ABSENT) for a in self.actions)


def script(hook: str, python: str | None = None) -> str:
    """The text of mlv's hook `hook`, running mlv with `python` (default: this one)."""
    purpose, body = _BODIES[hook]
    prelude = _PRELUDE.format(
        marker=MARKER,
        purpose=purpose,
        python=shlex.quote(python if python is not None else sys.executable or "python3"),
        entry=shlex.quote(_ENTRY),
        saved=SAVED_SUFFIX,
    )
    return prelude + "\n" + body.format(mlv_dir=shlex.quote(MLV_DIR))


def is_mlv_hook(path: str) -> bool:
    """True when the file at path is a hook that `mlv install` wrote."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return MARKER.encode() in head


def _git_root(start: str) -> str:
    root = git.toplevel(start)
    if root is None:
        raise UsageError(
            f"{os.path.realpath(start)} is not inside a git work tree",
            "git hooks need one: run `git init`, then `mlv init`",
        )
    return root


def install(start: str) -> HooksReport:
    """Write mlv's hooks into the repository's hooks folder (idempotent)."""
    root = _git_root(start)
    if not os.path.isdir(os.path.join(root, MLV_DIR)):
        raise NotARepoError(
            f"no {MLV_DIR}/ at the root of this git repository ({root})",
            "run `mlv init` first",
        )
    folder = git.hooks_dir(root)
    report = HooksReport(folder, root)
    plan: list[tuple[str, str, bytes]] = []
    for hook in HOOKS:
        path = os.path.join(folder, hook)
        want = script(hook).encode("utf-8")
        if not os.path.lexists(path):
            plan.append((hook, INSTALLED, want))
        elif is_mlv_hook(path):
            with open(path, "rb") as f:
                same = f.read() == want
            executable = os.access(path, os.X_OK)
            plan.append((hook, UNCHANGED if same and executable else UPDATED, want))
        else:
            saved = path + SAVED_SUFFIX
            if os.path.lexists(saved):
                raise MlvError(
                    f"cannot keep the existing {hook} hook: {saved} already exists",
                    f"move one of them out of {folder}, then run `mlv install` again",
                )
            plan.append((hook, CHAINED, want))
    # Everything checked before anything changes: all hooks are installed, or none.
    os.makedirs(folder, exist_ok=True)
    for hook, action, want in plan:
        path = os.path.join(folder, hook)
        if action == CHAINED:
            os.rename(path, path + SAVED_SUFFIX)
        if action != UNCHANGED:
            localfs.write_bytes_atomic(path, want, mode=0o777)  # rwx as the umask allows
        report.actions.append(HookAction(hook, action))
    return report


def uninstall(start: str) -> HooksReport:
    """Remove mlv's hooks and put back the ones they had moved aside."""
    root = _git_root(start)
    folder = git.hooks_dir(root)
    report = HooksReport(folder, root)
    for hook in HOOKS:
        path = os.path.join(folder, hook)
        saved = path + SAVED_SUFFIX
        ours = is_mlv_hook(path)
        if ours:
            os.unlink(path)
        if os.path.lexists(saved) and not os.path.lexists(path):
            os.rename(saved, path)
            report.actions.append(HookAction(hook, RESTORED))
        else:
            report.actions.append(HookAction(hook, REMOVED if ours else ABSENT))
    return report
