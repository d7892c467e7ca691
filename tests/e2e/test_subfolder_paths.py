"""Issue 19 item 9: run from a subfolder, mlv names paths relative to it, in its output and
in the hints of its errors, so that a hint is a command that works from there. Each test
runs the hint as printed, in the subfolder, and checks that it did what it says."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import yaml
from helpers import commit_all, mlv, remove_remote_object, run, write_files, xxh


def _hint(stderr: str) -> list[str]:
    """The first command a hint names in backquotes, as words."""
    found = re.search(r"`((?:mlv|git) [^`]+)`", stderr)
    assert found is not None, stderr
    return shlex.split(found.group(1))


def _run_hint(stderr: str, cwd: Path) -> str:
    """Run the hint's first command in cwd (where the user is); its output."""
    words = _hint(stderr)
    proc = run(*words, cwd=cwd)
    return proc.stdout + proc.stderr


def _refused(cwd: Path, *args: str, code: int = 2) -> str:
    proc = mlv(*args, cwd=cwd, check=False)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def _tracked_folder(repo: Path) -> Path:
    """d/s (a folder mlv tracks, committed), d/ the folder the user works in."""
    write_files(repo, {"d/s/a.txt": "a", "d/s/b.txt": "b"})
    mlv("add", "d/s", cwd=repo)
    commit_all(repo, "v1")
    return repo / "d"


def test_add_inside_a_tracked_folder_hints_a_commit_that_works_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    write_files(d, {"s/a.txt": "a2"})
    err = _refused(d, "add", "s/a.txt")
    assert "s/a.txt: inside s, which s.mlv already tracks" in err
    assert "run `mlv commit s`" in err
    assert _run_hint(err, d) == "Recorded s -> s.mlv\n"
    assert "a2" not in (mlv_repo / "d/s.mlv").read_text()  # the pointer changed...
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0  # ...to what is there


def test_add_of_a_folder_holding_a_tracked_one_hints_an_rm_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    err = _refused(d / "s", "add", "..")
    assert ": contains ., which ../s.mlv already tracks" in err
    assert "run `mlv rm ../s.mlv` first" in err
    assert _run_hint(err, d / "s").startswith("Stopped tracking . (removed ../s.mlv)")
    assert not (d / "s.mlv").exists()


def test_commit_and_rm_of_a_file_in_a_tracked_folder_name_the_folder_from_here(
    mlv_repo: Path,
) -> None:
    d = _tracked_folder(mlv_repo)
    write_files(d, {"s/a.txt": "a2"})
    err = _refused(d, "commit", "s/a.txt")
    assert err.startswith("error: s/a.txt: is inside tracked directory s: ")
    assert _run_hint(err, d) == "Recorded s -> s.mlv\n"
    err = _refused(d, "rm", "s/b.txt")
    assert err.startswith("error: s/b.txt: is inside tracked directory s: ")
    assert _run_hint(err, d).startswith("Stopped tracking s (removed s.mlv)")


def test_a_name_the_pointer_lacks_hints_an_ls_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    err = _refused(d, "checkout", "s/nope.txt")
    assert "s/nope.txt: not tracked by mlv (no such path in s.mlv)" in err
    assert "a.txt" in _run_hint(err, d)


def test_a_path_tracked_by_git_hints_a_git_rm_from_here(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"d/g.txt": "g"})
    run("git", "add", "d/g.txt", cwd=mlv_repo)
    d = mlv_repo / "d"
    err = _refused(d, "add", "g.txt")
    assert "run `git rm -r --cached 'g.txt'`" in err
    _run_hint(err, d)
    mlv("add", "g.txt", cwd=d)


def test_the_error_in_python_names_paths_from_the_root(mlv_repo: Path) -> None:
    """What scripts read: the error as Python shows it (mlv.api), wherever they run."""
    from mlv.core import add as add_mod
    from mlv.core.repo import Repo
    from mlv.errors import MlvError

    d = _tracked_folder(mlv_repo)
    write_files(d, {"s/a.txt": "a2"})
    repo = Repo.open(str(mlv_repo))
    try:
        add_mod.commit(repo, [str(d / "s/a.txt")])
    except MlvError as e:
        assert e.message == "d/s/a.txt: is inside tracked directory d/s"
        assert e.hint == "commit the whole directory: `mlv commit d/s`"
        assert str(e) == (
            "d/s/a.txt: is inside tracked directory d/s: commit the whole directory: "
            "`mlv commit d/s`"
        )
    else:
        raise AssertionError("commit of a file in a tracked folder was not refused")
    finally:
        repo.close()


def _pipeline(repo: Path, stages: dict[str, dict[str, object]]) -> None:
    (repo / "mlv.yaml").write_text(yaml.safe_dump({"stages": stages}))


def test_repro_from_a_subfolder_runs_the_pipeline_and_names_paths_from_there(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """mlv.yaml lives at the root: repro in d/ runs it (DVC would look for d/dvc.yaml), and
    its reasons and hints name paths from d/."""
    d = mlv_repo / "d"
    write_files(d, {"data.txt": "v1\n"})
    stages: dict[str, dict[str, object]] = {
        "train": {
            "cmd": "cat d/data.txt > d/model.txt",
            "deps": ["d/data.txt"],
            "outs": ["d/model.txt"],
        }
    }
    _pipeline(mlv_repo, stages)
    assert "Running stage 'train' (not in ../mlv.lock yet)" in mlv("repro", cwd=d).stdout
    write_files(d, {"data.txt": "v2\n"})
    assert "Running stage 'train' (dep data.txt changed)" in mlv("repro", cwd=d).stdout
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=d)
    mlv("push", cwd=d)
    stages["train"]["frozen"] = True
    _pipeline(mlv_repo, stages)
    digest = yaml.safe_load((mlv_repo / "mlv.lock").read_text())["stages"]["train"]["outs"][0]
    hex_ = digest["hash"].split(":")[1]
    (mlv_repo / ".mlv/cache/xxh128" / hex_[:2] / hex_[2:]).unlink()
    (d / "model.txt").unlink()
    err = _refused(d, "repro", code=1)
    assert "its output model.txt differs from ../mlv.lock" in err
    assert "run `mlv pull model.txt` to fetch it" in err
    assert "from stage 'train' in ../mlv.yaml" in err
    _run_hint(err, d)
    assert (d / "model.txt").read_text() == "v2\n"


def test_repro_hints_a_checkout_of_a_missing_tracked_dep_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    _pipeline(
        mlv_repo, {"count": {"cmd": "ls d/s > d/n.txt", "deps": ["d/s"], "outs": ["d/n.txt"]}}
    )
    shutil.rmtree(d / "s")
    err = _refused(d, "repro", code=1)
    assert "stage 'count': dependency s does not exist: run `mlv checkout s`" in err
    _run_hint(err, d)
    assert (d / "s/a.txt").read_text() == "a"
    assert mlv("repro", cwd=d).returncode == 0


def test_a_pointer_into_git_hints_a_git_rm_from_here(mlv_repo: Path) -> None:
    d = mlv_repo / "d"
    write_files(d, {"evil.mlv": _EVIL_POINTER})
    commit_all(mlv_repo, "a pointer from elsewhere")
    status = mlv("status", cwd=d, check=False)
    assert status.stdout.startswith("error        evil  (evil.mlv: path '.git/x' is inside")
    assert json.loads(mlv("status", "--json", cwd=d, check=False).stdout)["targets"][0][
        "error"
    ].endswith(
        "delete the pointer (`git rm -f d/evil.mlv`, or `rm d/evil.mlv` if git does not track it)"
    )  # --json: from the root
    err = _refused(d, "checkout", "evil", code=1)
    assert err.endswith(
        "delete the pointer (`git rm -f evil.mlv`, or `rm evil.mlv` if git does not track it)\n"
    )
    _run_hint(err, d)
    assert mlv("status", cwd=d).stdout == "No tracked data (add some with `mlv add PATH`).\n"


_EVIL_POINTER = (
    "version: 1\npath: .git/x\nkind: file\nhash: xxh128:00000000000000000000000000000000\nsize: 1\n"
)


def test_the_pointer_hint_works_staged_or_untracked(mlv_repo: Path) -> None:
    """A pointer of the user's own, staged but never committed (plain `git rm` refuses it:
    "changes staged in the index") or not known to git at all: each of the hint's two
    commands deletes it in its own state."""
    d = mlv_repo / "d"
    write_files(d, {"staged.mlv": _EVIL_POINTER, "loose.mlv": _EVIL_POINTER})
    run("git", "add", "d/staged.mlv", cwd=mlv_repo)
    err = _refused(d, "checkout", "staged", code=1)
    assert "(`git rm -f staged.mlv`, or `rm staged.mlv` if git does not track it)" in err
    _run_hint(err, d)
    assert not (d / "staged.mlv").exists()
    assert "staged.mlv" not in run("git", "status", "--short", cwd=mlv_repo).stdout
    err = _refused(d, "checkout", "loose", code=1)
    words = shlex.split(err.split("or `")[-1].split("`")[0])
    assert words == ["rm", "loose.mlv"]
    run(*words, cwd=d)  # the hint's second command: git does not track it
    assert mlv("status", cwd=d).returncode == 0


def test_a_stage_output_tracked_by_a_pointer_hints_an_rm_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    _pipeline(mlv_repo, {"make": {"cmd": "true", "outs": ["d/s"]}})
    err = _refused(d, "repro", code=1)
    assert "output s of stage 'make' is also tracked by s.mlv: run `mlv rm s.mlv`" in err
    _run_hint(err, d)
    assert not (d / "s.mlv").exists()


# ---- item 2: what the pipeline and import commands print, from a subfolder --------------


def test_pipeline_commands_name_paths_from_the_current_folder(mlv_repo: Path) -> None:
    """stage add/list, metrics show/diff and params diff in d/: paths from d/; --md and
    --json from the root (a table pasted into a pull request, a shape for scripts)."""
    d = mlv_repo / "d"
    write_files(mlv_repo, {"params.yaml": "lr: 0.1\n", "d/in.txt": "x\n"})
    added = mlv(
        "stage", "add", "score", "-d", "in.txt", "-p", "../params.yaml:lr", "-M", "m.json",
        "--", "echo '{\"acc\": 0.5}' > m.json", cwd=d,
    )  # fmt: skip
    assert added.stdout.startswith("Added stage 'score' to ../mlv.yaml.\n")
    listed = mlv("stage", "list", cwd=d).stdout.splitlines()
    assert listed[1].split()[-2:] == ["in.txt", "m.json"]
    assert json.loads(mlv("stage", "list", "--json", cwd=d).stdout)[0]["deps"] == ["d/in.txt"]
    mlv("repro", cwd=d)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"params.yaml": "lr: 0.2\n", "d/m.json": '{"acc": 0.7}'})
    assert mlv("metrics", "show", cwd=d).stdout.splitlines()[1].split()[:3] == [
        "workspace", "m.json", "0.7",
    ]  # fmt: skip
    assert mlv("metrics", "diff", cwd=d).stdout.splitlines()[1].split()[:2] == ["m.json", "acc"]
    assert "| d/m.json | acc |" in mlv("metrics", "diff", "--md", cwd=d).stdout
    assert mlv("params", "diff", cwd=d).stdout.splitlines()[1].split()[:2] == [
        "../params.yaml", "lr",
    ]  # fmt: skip
    assert "d/m.json" in json.loads(mlv("metrics", "diff", "--json", cwd=d).stdout)["metrics"]
    write_files(mlv_repo, {"d/m.json": "{not json"})
    warned = mlv("metrics", "show", cwd=d).stderr
    assert warned.startswith("warning: m.json: "), warned


def test_import_and_update_name_the_data_from_the_current_folder(
    mlv_repo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    run("git", "init", "-q", "-b", "main", str(source), cwd=tmp_path)
    mlv("init", cwd=source)
    write_files(source, {"model.bin": "m1"})
    mlv("add", "model.bin", cwd=source)
    commit_all(source, "v1")
    d = mlv_repo / "d"
    d.mkdir()
    imported = mlv("import", str(source), "model.bin", "-o", "m.bin", cwd=d).stdout
    assert imported.startswith("Imported model.bin from ") and imported.endswith(" to m.bin.\n")
    assert mlv("update", "m.bin", cwd=d).stdout.startswith("m.bin is already up to date (")
    write_files(d, {"g.bin": "g"})
    run("git", "add", "g.bin", cwd=d)
    err = _refused(d, "import", str(source), "model.bin", "-o", "g.bin")
    assert "g.bin: is tracked by git: import to another path (-o PATH), or `git rm" in err
    _run_hint(err, d)
    mlv("import", str(source), "model.bin", "-o", "g.bin", "--force", cwd=d)
    assert (d / "g.bin").read_text() == "m1"


def test_a_missing_parameter_names_the_params_file_from_here(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"params.yaml": "lr: 0.1\n"})
    _pipeline(mlv_repo, {"fit": {"cmd": "true", "params": ["epochs"]}})
    d = mlv_repo / "d"
    d.mkdir()
    err = _refused(d, "repro", code=1)
    assert "../params.yaml: no parameter 'epochs': add it to ../params.yaml or fix" in err


def test_ls_and_du_name_a_missing_path_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    err = _refused(d, "ls", "s/nope")
    assert err == "error: s/nope: no such path in s.mlv in the workspace\n"
    err = _refused(d, "du", "--rev", "HEAD", "nope")
    assert err.startswith("error: nope: not tracked at ")


def test_exp_show_names_a_shared_key_by_its_file_from_here(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"d/a.json": '{"acc": 0.5}', "b.json": '{"acc": 0.6}'})
    _pipeline(
        mlv_repo,
        {
            "m": {
                "cmd": "true",
                "metrics": [{"d/a.json": {"cache": False}}, {"b.json": {"cache": False}}],
            }
        },
    )
    commit_all(mlv_repo, "v1")
    d = mlv_repo / "d"
    header = mlv("exp", "show", cwd=d).stdout.splitlines()[0].split()
    assert "a.json:acc" in header and "../b.json:acc" in header, header
    md = mlv("exp", "show", "--md", cwd=d).stdout
    assert "d/a.json:acc" in md and "| b.json:acc" in md, md


def test_status_hints_run_from_here(mlv_repo: Path) -> None:
    d = _tracked_folder(mlv_repo)
    shutil.rmtree(d / "s")
    status = mlv("status", cwd=d).stdout
    assert status == "missing      s  (run `mlv checkout`)\n"
    _run_hint(status, d)
    assert (d / "s/b.txt").read_text() == "b"
    write_files(d, {"s/a.txt": "a2"})
    status = mlv("status", cwd=d).stdout
    assert status.startswith("modified     s  (0 added, 1 modified, 0 deleted)\n")
    mlv("commit", "s", cwd=d)
    run("git", "checkout", "-q", "HEAD", "--", "s.mlv", cwd=d)
    status = mlv("status", cwd=d).stdout
    assert "[the workspace holds another recorded version: run `mlv checkout`" in status
    _run_hint(status, d)
    assert (d / "s/a.txt").read_text() == "a"


def test_pull_of_objects_the_remote_lost_hints_a_push_from_here(
    mlv_repo: Path, tmp_path: Path
) -> None:
    d = _tracked_folder(mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=d)
    mlv("push", cwd=d)
    remove_remote_object(tmp_path / "store", xxh(b"a"))
    cache = mlv_repo / ".mlv/cache"
    cache.rename(tmp_path / "kept-cache")
    shutil.rmtree(d / "s")
    proc = mlv("pull", "s", cwd=d, check=False)
    assert proc.returncode == 1
    assert "(where a cache has them, `mlv push --verify s` re-sends them):\n" in proc.stderr
    assert f"    {xxh(b'a')}  s/a.txt\n" in proc.stderr
    shutil.rmtree(cache)
    (tmp_path / "kept-cache").rename(cache)  # the cache that has them
    _run_hint(proc.stderr, d)
    shutil.rmtree(cache)
    mlv("pull", "s", cwd=d)
    assert (d / "s/a.txt").read_text() == "a"


def test_a_link_in_the_way_of_checkout_is_named_from_here(mlv_repo: Path, tmp_path: Path) -> None:
    d = _tracked_folder(mlv_repo)
    shutil.rmtree(d / "s")
    (tmp_path / "elsewhere").mkdir()
    (d / "s").symlink_to(tmp_path / "elsewhere")
    err = _refused(d, "checkout", code=1)
    assert err.startswith("error: s: is a symbolic link (to ")
    assert "remove the link (`git rm -f s`, or `rm s` if git does not track it)" in err
    run("rm", "s", cwd=d)  # the hint's second command: git does not track the link
    mlv("checkout", cwd=d)
    assert (d / "s/a.txt").read_text() == "a"
    assert list((tmp_path / "elsewhere").iterdir()) == []
