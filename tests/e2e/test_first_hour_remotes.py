"""Issue 19, a new user's first hour, with remotes: `-r` without a name, the JSON of pull,
what `status --remote` proves, a folder remote that does not exist, counts in words, and
paths printed from a subfolder.

Each test runs the hint that a message gives, in the state where it was given.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from helpers import (
    assert_error,
    commit_all,
    git,
    mlv,
    object_path,
    remove_remote_object,
    run,
    write_files,
    xxh,
)


def _hint(line: str) -> list[str]:
    """The command in the last `...` of an error line, as arguments after `mlv`."""
    command = line.rsplit("`", 2)[-2]
    words = shlex.split(command)
    assert words[0] == "mlv", line
    return words[1:]


def _tracked(repo: Path) -> None:
    write_files(repo, {"data/a.txt": "a", "data/sub/b.txt": "b", "model.bin": "m"})
    mlv("add", "data", "model.bin", cwd=repo)
    commit_all(repo, "v1")


# ---- item 6: -r without a name is the default remote ------------------------------------


def test_remote_option_without_name_uses_the_default(mlv_repo: Path, tmp_path: Path) -> None:
    _tracked(mlv_repo)
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=mlv_repo)
    not_pushed = mlv("status", "-r", "--check", cwd=mlv_repo, check=False)
    assert not_pushed.returncode == 1, not_pushed.stderr
    assert "not pushed" in not_pushed.stdout
    pushed = json.loads(mlv("push", "-r", "--json", cwd=mlv_repo).stdout)
    assert pushed["remote"] == "store" and pushed["transferred"]["objects"] == 5
    assert mlv("status", "--check", "-r", cwd=mlv_repo).returncode == 0
    mlv("verify", "-r", cwd=mlv_repo)
    dry = mlv("gc", "-w", "-r", "--dry-run", cwd=mlv_repo).stdout
    assert "from remote 'store'" in dry
    # the name still goes where it is given, before a path
    mlv("remote", "add", "other", str(tmp_path / "other"), cwd=mlv_repo)
    other = mlv("status", "-r", "other", "data", "--check", cwd=mlv_repo, check=False)
    assert other.returncode == 1 and "data" in other.stdout and "model.bin" not in other.stdout
    mlv("push", "-r", "other", "data", cwd=mlv_repo)
    assert mlv("status", "-r", "other", "data", "--check", cwd=mlv_repo).returncode == 0


def test_remote_option_followed_by_a_path_names_the_command_meant(
    mlv_repo: Path, tmp_path: Path
) -> None:
    _tracked(mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    mlv("push", "data", cwd=mlv_repo)
    proc = mlv("status", "-r", "data", "--check", cwd=mlv_repo, check=False)
    line = assert_error(proc, 2, "no remote named 'data'", "'data' is a path here")
    assert _hint(line) == ["status", "data", "-r"]
    hinted = mlv(*_hint(line), "--check", cwd=mlv_repo)
    assert "data" in hinted.stdout and "model.bin" not in hinted.stdout
    # no default remote: the hint names a configured one before the path
    mlv("remote", "default", "--unset", cwd=mlv_repo)
    line = assert_error(mlv("push", "-r", "data", cwd=mlv_repo, check=False), 2, "'data'")
    assert _hint(line) == ["push", "-r", "store", "data"]
    mlv(*_hint(line), cwd=mlv_repo)


def test_missing_option_value_points_at_the_subcommand_help(mlv_repo: Path) -> None:
    for args, where in (
        (["push", "-j"], "mlv push"),
        (["-q", "fetch", "data", "-j"], "mlv fetch"),
        (["remote", "modify", "--local"], "mlv remote modify"),
    ):
        line = assert_error(mlv(*args, cwd=mlv_repo, check=False), 2)
        assert line.endswith(f"see `{where} --help`"), line
        assert "Usage:" in mlv(*_hint(line), cwd=mlv_repo).stdout


# ---- item 3: pull --json names itself ---------------------------------------------------


def test_pull_json_says_pull(mlv_repo: Path, tmp_path: Path) -> None:
    _tracked(mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    git("add", "-A", cwd=mlv_repo)
    git("commit", "-q", "-m", "remote", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    fetched = json.loads(mlv("fetch", "--json", "model.bin", cwd=clone).stdout)
    pulled = json.loads(mlv("pull", "--json", cwd=clone).stdout)
    assert (fetched["action"], pulled["action"]) == ("fetch", "pull")
    assert pulled["checkout"]["ok"] and pulled["ok"]


# ---- item 1: status --remote says what it found, and names the proof --------------------


def test_status_remote_labels_what_it_found_and_names_the_proof(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A file object lost behind mlv's back: status --remote cannot see it (a tree, or an
    index, stands for it), so it does not say `pushed`; the command it names finds it."""
    _tracked(mlv_repo)
    for name, threshold, label in (("loose", "0", "tree present"), ("packed", "4MiB", "indexed")):
        store = tmp_path / name
        mlv("remote", "add", name, str(store), cwd=mlv_repo)
        mlv("remote", "modify", name, "pack_threshold", threshold, cwd=mlv_repo)
        mlv("push", "-r", name, cwd=mlv_repo)
        assert remove_remote_object(store, xxh(b"b"))  # data/sub/b.txt
        proc = mlv("status", "-r", name, "--check", cwd=mlv_repo)
        lines = proc.stdout.splitlines()
        assert lines[0] == f"{label:<13}data", proc.stdout
        assert lines[-1].startswith(f"({label}: "), proc.stdout
        hints = lines[-1].split("`")[1::2]
        assert hints == [f"mlv verify --remote {name}", f"mlv push --verify -r {name}"]
        found = mlv(*shlex.split(hints[0])[1:], cwd=mlv_repo, check=False)
        assert found.returncode == 1 and "data/sub/b.txt" in found.stdout
        mlv(*shlex.split(hints[1])[1:], cwd=mlv_repo)
        mlv(*shlex.split(hints[0])[1:], cwd=mlv_repo)


def test_status_remote_says_pushed_when_every_object_was_asked_for(
    mlv_repo: Path, tmp_path: Path
) -> None:
    write_files(mlv_repo, {"model.bin": "m"})
    mlv("add", "model.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "loose", str(tmp_path / "loose"), cwd=mlv_repo)
    mlv("remote", "modify", "loose", "pack_threshold", "0", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    assert mlv("status", "-r", cwd=mlv_repo).stdout == f"{'pushed':<13}model.bin\n"


def test_status_remote_of_a_fresh_clone_finds_what_was_pushed(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A clone's cache lacks the folders' trees before its first pull; on a packed remote
    (the default) status -r said `not pushed   data  (1 object(s) not on 'store', 1 not in
    the cache either)` of data that was all there. The trees are read from the remote."""
    _tracked(mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    mlv("push", cwd=mlv_repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    proc = mlv("status", "-r", "--check", cwd=clone)
    assert proc.stdout.splitlines()[:2] == [f"{'indexed':<13}data", f"{'indexed':<13}model.bin"]
    pushed = mlv("push", "--json", cwd=clone)
    assert json.loads(pushed.stdout)["missing"] == [], pushed.stdout
    assert not (clone / ".mlv" / "cache" / "xxh128").exists()  # kept in memory only


def test_status_remote_of_a_folder_never_pushed_says_its_tree_is_lost_not_a_count(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A clone of a repository whose data was never pushed: the folder's tree is on neither
    side, so its files cannot be counted ('1 object(s) not on' was the tree alone)."""
    _tracked(mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    lines = mlv("status", "-r", cwd=clone).stdout.splitlines()
    assert lines[0] == (
        f"{'not pushed':<13}data  (its folder's tree is neither on 'store' nor in the cache: "
        "`mlv push` from the clone that added it sends it)"
    )
    assert lines[1].startswith(f"{'not pushed':<13}model.bin  (1 object(s) not on 'store'")
    mlv("push", cwd=mlv_repo)  # the hint, where it can work
    assert mlv("status", "-r", "--check", cwd=clone).returncode == 0


def test_a_version_git_pull_brought_is_fetched_by_the_command_named(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """After `git pull` brings a pointer whose data this clone never fetched, status and
    checkout named `mlv checkout` and `re-add the data with mlv add`; both name `mlv pull`,
    which works as printed."""
    _tracked(mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    mlv("push", cwd=mlv_repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    mlv("pull", cwd=clone)
    write_files(mlv_repo, {"data/a.txt": "a2"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    git("pull", "-q", cwd=clone)
    status = mlv("status", cwd=clone).stdout.splitlines()[0]
    assert status.startswith("modified     data  [the recorded version is not in the cache]")
    assert status.endswith(
        "[the workspace holds another recorded version: run `mlv pull` to "
        "match the pointer, or `mlv commit` to record it]"
    ), status
    line = assert_error(
        mlv("checkout", cwd=clone, check=False), 1, "data: object xxh128:", "is not in the cache"
    )
    assert _hint(line) == ["pull", "data"]
    mlv(*_hint(line), cwd=clone)
    assert (clone / "data" / "a.txt").read_text() == "a2"
    assert mlv("status", "--check", cwd=clone).returncode == 0


# ---- item 2: a folder remote that does not exist -----------------------------------------


def test_relative_folder_remote_from_a_clone_elsewhere(mlv_repo: Path, tmp_path: Path) -> None:
    """`../store` is relative to the repository root: a clone next to the first one finds
    the store; a clone in another folder is told which folder it looked for, and where the
    url came from; the hint, with the store's real path, makes the pull work."""
    project = tmp_path / "project"
    git("clone", "-q", str(mlv_repo), str(project), cwd=tmp_path)
    mlv("init", cwd=project)
    _tracked(project)
    added = mlv("remote", "add", "-d", "store", "../store", cwd=project).stdout
    store = tmp_path / "store"
    assert f"Its folder {store} does not exist yet: `mlv push` creates it." in added
    commit_all(project, "remote")
    pushed = mlv("push", cwd=project).stdout
    assert pushed.startswith(f"Created the folder {store} for remote 'store'.\n")
    assert "Created" not in mlv("push", cwd=project).stdout

    beside = tmp_path / "beside"
    git("clone", "-q", str(project), str(beside), cwd=tmp_path)
    mlv("pull", cwd=beside)
    assert (beside / "model.bin").read_text() == "m"

    elsewhere = tmp_path / "elsewhere" / "clone"
    git("clone", "-q", str(project), str(elsewhere), cwd=tmp_path)
    resolved = tmp_path / "elsewhere" / "store"
    status = mlv("status", "-r", cwd=elsewhere)  # nothing is there: a warning, not pushed
    assert status.stdout.startswith("not pushed   data"), status.stdout
    assert status.stderr.startswith(f"warning: remote 'store': the folder {resolved} does not")
    for args in (
        ["pull"],
        ["fetch"],
        ["verify", "-r"],
        ["gc", "-w", "-r"],
        ["ls", "-r", "store", "data"],
    ):
        line = assert_error(
            mlv(*args, cwd=elsewhere, check=False),
            1,
            f"remote 'store': the folder {resolved} does not exist",
            "'../store' in .mlv/config.yaml, relative to the repository root",
        )
    assert not resolved.exists()  # nothing read made it
    hint = _hint(line)
    assert hint == ["remote", "modify", "--local", "store", "url", "PATH"]
    mlv(*hint[:-1], str(store), cwd=elsewhere)
    mlv("pull", cwd=elsewhere)
    assert (elsewhere / "data/sub/b.txt").read_text() == "b"
    assert git("status", "--porcelain", cwd=elsewhere).stdout == ""  # nothing to commit


def test_mistyped_folder_and_a_file_in_its_place(mlv_repo: Path, tmp_path: Path) -> None:
    _tracked(mlv_repo)
    typo = tmp_path / "sotre"
    mlv("remote", "add", "-d", "store", str(typo), cwd=mlv_repo)
    line = assert_error(
        mlv("verify", "-r", cwd=mlv_repo, check=False), 1, f"the folder {typo} does not exist"
    )
    assert "relative" not in line
    typo.write_text("a file")
    for command in ("fetch", "push", "status"):
        line = assert_error(mlv(command, "-r", cwd=mlv_repo, check=False), 1)
        assert f"remote 'store': the folder {typo} is not a folder" in line
    assert typo.read_text() == "a file"


# ---- item 9: counts in words, the first push's count --------------------------------------


def test_one_object_is_one_object(mlv_repo: Path, tmp_path: Path) -> None:
    write_files(mlv_repo, {"model.bin": "m"})
    mlv("add", "model.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    pushed = mlv("push", cwd=mlv_repo).stdout.splitlines()
    assert pushed[-1] == "Pushed 1 object (1 B) to 'store'; 0 already on the remote."
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    fetched = mlv("fetch", cwd=clone).stdout
    assert fetched == "Fetched 1 object (1 B) from 'store'; 0 already in the cache.\n"


def test_first_push_with_the_run_cache_finds_nothing_already_there(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """The run cache names the outputs the same push has just sent: they are not counted a
    second time, as if they had been on the empty remote before; nor on the way back."""
    write_files(
        mlv_repo,
        {
            "mlv.yaml": "stages:\n  make:\n    cmd: echo out > out.txt && mkdir -p d && "
            "echo x > d/x\n    outs: [out.txt, d]\n",
        },
    )
    mlv("repro", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    commit_all(mlv_repo, "run")
    pushed = json.loads(mlv("push", "--run-cache", "--json", cwd=mlv_repo).stdout)
    assert pushed["skipped"] == {"objects": 0}, pushed
    assert pushed["transferred"]["objects"] == 3 and pushed["run_cache"]["transferred"] == 1
    text = mlv("push", "--run-cache", cwd=mlv_repo).stdout
    assert "Pushed 0 objects (0 B) to 'store'; 3 already on the remote." in text
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    fetched = json.loads(mlv("fetch", "--run-cache", "--json", cwd=clone).stdout)
    assert fetched["skipped"] == {"objects": 0}, fetched
    assert fetched["transferred"]["objects"] == 3 and fetched["run_cache"]["transferred"] == 1


_WARNS = """
import sys, warnings
from cryptography.utils import CryptographyDeprecationWarning
from mlv.cli import main, output

configure = output.configure

def configure_then_warn(verbose, quiet):  # as asyncssh warns when it connects
    configure(verbose, quiet)
    for module in ("asyncssh.crypto.cipher", "somewhere.else"):
        warnings.warn_explicit(f"TripleDES moved ({module})", CryptographyDeprecationWarning,
                               "x.py", 1, module=module)

output.configure = configure_then_warn
main(sys.argv[1:])
"""


def test_asyncssh_cryptography_warnings_are_not_shown(mlv_repo: Path) -> None:
    """In a fresh process (Python's default filters show every UserWarning), asyncssh's
    CryptographyDeprecationWarnings print nothing; other modules' still do; -v shows all."""
    quiet = run(sys.executable, "-c", _WARNS, "status", cwd=mlv_repo).stderr
    assert "asyncssh" not in quiet and "TripleDES moved (somewhere.else)" in quiet
    loud = run(sys.executable, "-c", _WARNS, "-v", "status", cwd=mlv_repo).stderr
    assert "TripleDES moved (asyncssh.crypto.cipher)" in loud


# ---- item 9: paths relative to the current folder ----------------------------------------


def test_text_output_names_paths_from_the_current_folder(mlv_repo: Path, tmp_path: Path) -> None:
    """Run from src/, every command prints paths as git status does, relative to src/, so
    a printed path pasted into the next command names the same thing; --json keeps them
    relative to the root (a stable shape for scripts)."""
    _tracked(mlv_repo)
    src = mlv_repo / "src"
    write_files(src, {"local.bin": "l"})
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)

    def out(*args: str, ok: bool = True) -> str:
        proc = mlv(*args, cwd=src, check=ok)
        return proc.stdout + proc.stderr

    assert out("add", "local.bin").startswith("Added local.bin (1 B) -> local.bin.mlv\n")
    assert out("status") == (
        "clean        ../data\nclean        ../model.bin\nclean        local.bin\n"
    )
    assert json.loads(out("status", "--json"))["targets"][2]["path"] == "src/local.bin"
    write_files(mlv_repo, {"data/a.txt": "a2", "model.bin": "m2"})
    status = out("status", "--check", ok=False)
    assert "modified     ../data  (0 added, 1 modified, 0 deleted)\n" in status
    assert "    modified: ../data/a.txt\n" in status
    assert out("status", "--check", "../data/a.txt", ok=False).startswith("modified")
    assert "../model.bin  expected " in out("verify", "--workspace", ok=False)
    assert out("commit", "../data") == "Recorded ../data -> ../data.mlv\n"
    assert "Modified:\n    ../data/a.txt  (1 B -> 2 B)\n" in out("diff", "HEAD")
    assert "| data/a.txt |" in out("diff", "HEAD", "--md")  # --md: from the root
    write_files(src, {"local.bin": "not recorded"})
    assert "    local.bin\n" in out("checkout", ok=False)  # a conflict, left alone
    out("checkout", "--force")
    assert out("du").splitlines()[-1].endswith("  . (total)")
    object_path(mlv_repo, xxh(b"b")).unlink()
    pushed = out("push", ok=False)
    assert f"{xxh(b'b')}  ../data/sub/b.txt\n" in pushed
    assert out("mv", "local.bin", "moved.bin") == (
        "Moved local.bin -> moved.bin (pointer moved.bin.mlv).\n"
    )
    assert out("rm", "moved.bin").startswith("Stopped tracking moved.bin (removed moved.bin.mlv)")


def test_adding_a_remote_again_names_the_modify_that_changes_it(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """The hint was `mlv remote modify`, which fails as printed (it needs NAME KEY VALUE)."""
    for level in ([], ["--local"]):
        mlv("remote", "add", *level, "s", "../s", cwd=mlv_repo)
        line = assert_error(
            mlv("remote", "add", *level, "s", "../t u", cwd=mlv_repo, check=False),
            2,
            "remote 's' already exists in",
        )
        assert _hint(line) == ["remote", "modify", *level, "s", "url", "../t u"]
        mlv(*_hint(line), cwd=mlv_repo)
        assert mlv("remote", "list", cwd=mlv_repo).stdout == "s\t../t u\n"
        mlv("remote", "remove", *level, "s", cwd=mlv_repo)
