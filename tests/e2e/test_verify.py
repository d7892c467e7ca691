"""`mlv verify`: workspace, cache and remote checks, with real git, a folder remote and a
moto S3 server; and the commands of the CI examples (examples/ci/) run as CI runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    MLV,
    assert_error,
    cache_objects,
    commit_all,
    damage_remote_object,
    git,
    mlv,
    remove_remote_object,
    write_files,
    xxh,
)
from servers import S3Server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "ci"
BIG = 3 << 20  # above 1 MiB: streamed to a scratch file by the remote check; packed (< 4 MiB)


# ---- helpers ----------------------------------------------------------------------------


def verify(repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = mlv("verify", "--json", *args, cwd=repo, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    assert doc["ok"] == (proc.returncode == 0)
    return proc.returncode, doc


def found(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(path, found, where) of every problem."""
    return {(p["path"], p["found"], p["where"]) for p in doc["problems"]}


def dataset(repo: Path) -> dict[str, bytes]:
    files = {f"data/images/cats/c{i}.jpg": f"cat {i}".encode() for i in range(5)}
    files |= {f"data/images/dogs/d{i}.jpg": f"dog {i}".encode() for i in range(5)}
    files["data/labels.csv"] = b"a,b\n1,2\n"
    files["model.bin"] = os.urandom(BIG)
    write_files(repo, files)
    return files


def push_in_two(repo: Path, first: str) -> None:
    """Push `first`, then the rest: two pushes write two data packs, so one pack can be lost
    and an object of the other damaged."""
    mlv("push", first, cwd=repo)
    mlv("push", cwd=repo)


def setup_pushed(mlv_repo: Path, tmp_path: Path) -> Path:
    """data/ and model.bin tracked, committed and pushed to a folder remote 'store' (the
    default, packed): model.bin in a pack of its own, data/'s files in another."""
    remote = tmp_path / "remote"
    dataset(mlv_repo)
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    push_in_two(mlv_repo, "model.bin")
    return remote


def paths_of(repo: Path) -> dict[str, str]:
    """hash id -> path, for every file of dataset()."""
    files = [p for p in (repo / "data").rglob("*") if p.is_file()] + [repo / "model.bin"]
    return {xxh(p.read_bytes()): p.relative_to(repo).as_posix() for p in files}


def folder_object(root: Path, hash_id: str) -> Path:
    algo, _, hexpart = hash_id.partition(":")
    return root / algo / hexpart[:2] / hexpart[2:]


def overwrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def s3_packed(client: Any, bucket: str) -> dict[str, tuple[str, int, int]]:
    """hash id -> (pack key, offset, stored length), for every object that an index of
    s3://BUCKET/store names (read with mlv's own checked parser)."""
    from mlv.objects.packs.index import PackIndex

    found: dict[str, tuple[str, int, int]] = {}
    listed = client.list_objects_v2(Bucket=bucket, Prefix="store/index/").get("Contents", [])
    for item in sorted(listed, key=lambda i: str(i["Key"])):
        name = item["Key"].rsplit("/", 1)[1].removesuffix(".idx")
        body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for h, loc in PackIndex.parse(name, body).items():
            key = f"store/packs/{loc.pack.name[:2]}/{loc.pack.name}.pack"
            found.setdefault(h, (key, loc.offset, loc.stored))
    return found


def s3_break(server: S3Server, bucket: str, missing: str, corrupt: str) -> tuple[set[str], str]:
    """On s3://BUCKET/store, lose the pack holding `missing` and flip the first byte of
    `corrupt` (packed, in another pack): (the hashes lost, the hash of corrupt's bytes now)."""
    client = server.client()
    try:
        packed = s3_packed(client, bucket)
        gone = packed[missing][0]
        lost = {h for h, (key, _, _) in packed.items() if key == gone}
        assert corrupt not in lost
        client.delete_object(Bucket=bucket, Key=gone)
        key, offset, stored = packed[corrupt]
        data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        data[offset] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
        return lost, xxh(bytes(data[offset : offset + stored]))
    finally:
        client.close()


def state(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below root (mlv's scratch folder .mlv/tmp aside): bytes, mtime, mode."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".mlv/tmp", ".git/")) or not path.is_file():
            continue
        st = path.stat()
        # cached remote indexes are touched when a listing names them (their bytes never change)
        mtime = 0 if rel.startswith(".mlv/cache/index/") else st.st_mtime_ns
        out[rel] = (path.read_bytes(), mtime, st.st_mode)
    return out


# ---- a healthy repository -----------------------------------------------------------------


def test_healthy_repository_holds_everywhere(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    code, doc = verify(mlv_repo)
    assert code == 0 and doc["problems"] == []
    assert doc["remote"] is None
    assert doc["workspace"]["files"] == 12 and doc["workspace"]["bytes"] > BIG
    assert doc["workspace"]["rehash"] is False
    # 12 files + 4 trees (data, images, cats, dogs); every byte of them read
    assert doc["cache"]["objects"] == 16
    assert doc["cache"]["read_bytes"] == doc["cache"]["bytes"] > BIG
    assert {t["path"] for t in doc["targets"]} == {"data", "model.bin"}
    for args in (["--remote", "store"], ["--remote", "store", "--full"], ["--rehash"]):
        code, doc = verify(mlv_repo, *args)
        assert code == 0, doc["problems"]
    code, doc = verify(mlv_repo, "--remote", "store", "--full")
    assert doc["remote"]["objects"] == doc["remote"]["present"] == 16
    assert doc["remote"]["mode"] == "full"
    assert doc["remote"]["downloaded"]["bytes"] >= BIG
    assert doc["workspace"] is None and doc["cache"] is None
    text = mlv("verify", "--remote", "store", "--workspace", cwd=mlv_repo).stdout
    assert "Everything checked holds" in text
    assert "workspace" in text and "remote 'store'" in text and "cache" not in text


# ---- the workspace --------------------------------------------------------------------------


def test_workspace_changes_are_listed_per_file(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    old = (mlv_repo / "data/labels.csv").read_bytes()
    new = b"a,b\n1,2\n3,4\n"
    (mlv_repo / "data/labels.csv").write_bytes(new)
    (mlv_repo / "data/images/cats/c0.jpg").unlink()
    (mlv_repo / "data/images/cats/new.jpg").write_bytes(b"new cat")
    (mlv_repo / "model.bin").unlink()
    code, doc = verify(mlv_repo, "--workspace")
    assert code == 1
    assert found(doc) == {
        ("data/labels.csv", "modified", "workspace"),
        ("data/images/cats/c0.jpg", "missing", "workspace"),
        ("data/images/cats/new.jpg", "added", "workspace"),
        ("model.bin", "missing", "workspace"),
    }
    by_path = {p["path"]: p for p in doc["problems"]}
    assert by_path["data/labels.csv"]["hash"] == xxh(old)
    assert by_path["data/labels.csv"]["got"] == xxh(new)
    assert by_path["data/images/cats/new.jpg"]["hash"] is None
    assert doc["cache"] is None
    text = mlv("verify", "--workspace", cwd=mlv_repo, check=False)
    assert text.returncode == 1
    line = f"data/labels.csv  expected {xxh(old)}  found: modified (got {xxh(new)})"
    assert line + "  where: workspace" in text.stdout
    # a path inside a tracked directory checks that part only
    code, doc = verify(mlv_repo, "--workspace", "data/images/dogs")
    assert code == 0, doc["problems"]


def test_an_edit_that_keeps_size_and_mtime_needs_rehash(mlv_repo: Path, tmp_path: Path) -> None:
    """The state database vouches for a file whose inode, size and mtime are unchanged (as
    `mlv status` does): such an edit is found only by --rehash, which reads every byte."""
    files = {f"data/f{i}.txt": f"file {i}".encode() for i in range(3)}
    write_files(mlv_repo, files)
    for rel in files:  # old enough that the state database trusts its rows at once
        os.utime(mlv_repo / rel, ns=(1_600_000_000_000_000_000,) * 2)
    mlv("add", "data", cwd=mlv_repo)
    assert verify(mlv_repo, "--workspace")[0] == 0
    target = mlv_repo / "data/f1.txt"
    st = target.stat()
    with open(target, "r+b") as fh:  # same inode, same size
        fh.write(b"FILE")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, doc = verify(mlv_repo, "--workspace")
    assert code == 0 and doc["workspace"]["read_bytes"] == 0  # nothing read: one stat each
    db = mlv_repo / ".mlv/tmp/state.db"
    before = db.read_bytes()
    code, doc = verify(mlv_repo, "--rehash")
    assert code == 1
    assert found(doc) == {("data/f1.txt", "modified", "workspace")}
    assert doc["workspace"]["rehash"] is True
    assert doc["workspace"]["read_bytes"] == sum(len(v) for v in files.values())
    assert db.read_bytes() == before  # --rehash neither trusts nor writes the state database


# ---- the cache ------------------------------------------------------------------------------


def test_cache_missing_and_corrupt_objects(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    cache = mlv_repo / ".mlv/cache"
    gone = xxh(b"dog 1")
    folder_object(cache, gone).unlink()
    overwrite(folder_object(cache, xxh(b"cat 2")), b"cat 9")
    model = xxh((mlv_repo / "model.bin").read_bytes())
    damaged = bytearray(folder_object(cache, model).read_bytes())
    damaged[1000] ^= 1
    overwrite(folder_object(cache, model), bytes(damaged))
    # status only sees objects present; verify reads them
    assert mlv("status", "--check", "model.bin", cwd=mlv_repo, check=False).returncode == 0
    code, doc = verify(mlv_repo, "--cache")
    assert code == 1
    assert found(doc) == {
        ("data/images/dogs/d1.jpg", "missing", "cache"),
        ("data/images/cats/c2.jpg", "corrupt", "cache"),
        ("model.bin", "corrupt", "cache"),
    }
    by_path = {p["path"]: p for p in doc["problems"]}
    assert by_path["data/images/cats/c2.jpg"]["got"] == xxh(b"cat 9")
    assert by_path["model.bin"]["got"] == xxh(bytes(damaged))
    assert by_path["model.bin"]["hash"] == model
    assert doc["workspace"] is None and doc["cache"]["problems"] == 3
    # trust records of earlier checks do not count: a checkout trusted model.bin before
    code, doc = verify(mlv_repo, "--cache", "model.bin")
    assert found(doc) == {("model.bin", "corrupt", "cache")}


def test_a_damaged_tree_hides_its_folder_and_says_so(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    cache = mlv_repo / ".mlv/cache"
    trees = {
        h: p for h, p in cache_objects(mlv_repo).items() if p.read_bytes().startswith(b'{"mlv-')
    }
    cats = next(h for h, p in trees.items() if b"c0.jpg" in p.read_bytes())
    overwrite(folder_object(cache, cats), b'{"mlv-tree":1,"entries":[]}')
    code, doc = verify(mlv_repo, "--cache")
    assert code == 1
    [problem] = doc["problems"]
    assert (problem["path"], problem["found"], problem["hash"]) == (
        "data/images/cats",
        "corrupt",
        cats,
    )
    assert "not checked" in problem["reason"]
    # with a remote checked too, the tree comes from the remote and its files are checked
    folder_object(cache, xxh(b"cat 3")).unlink()
    code, doc = verify(mlv_repo, "--cache", "--remote", "store")
    assert found(doc) == {
        ("data/images/cats", "corrupt", "cache"),
        ("data/images/cats/c3.jpg", "missing", "cache"),
    }


# ---- the remote -----------------------------------------------------------------------------


def break_folder_remote(repo: Path, remote: Path) -> tuple[set[tuple[str, str, str]], str]:
    """Lose the pack holding data/images/dogs/d3.jpg (every file of data/ goes with it) and
    flip a byte of model.bin on the remote: (the missing problems, model.bin's hash)."""
    corrupt = xxh((repo / "model.bin").read_bytes())
    lost = remove_remote_object(remote, xxh(b"dog 3"))
    damage_remote_object(remote, corrupt)
    paths = paths_of(repo)
    assert xxh(b"dog 3") in lost and corrupt not in lost and len(lost) == 11
    return {(paths[h], "missing", "remote") for h in lost}, corrupt


def test_folder_remote_missing_and_corrupt(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    missing, corrupt = break_folder_remote(mlv_repo, remote)
    # the quick check answers from the indexes, which still name the lost pack's objects
    assert mlv("status", "--remote", "store", "--check", cwd=mlv_repo).returncode == 0
    # presence, per object: every object of the lost pack
    code, doc = verify(mlv_repo, "--remote", "store")
    assert code == 1
    assert found(doc) == missing
    assert doc["remote"]["downloaded"]["bytes"] == 0  # trees came from the cache
    # and the corrupt one, with every object downloaded, or a sample of 100%
    for args in (["--full"], ["--sample", "100"]):
        code, doc = verify(mlv_repo, "--remote", "store", *args)
        assert code == 1
        assert found(doc) == missing | {("model.bin", "corrupt", "remote")}, args
        bad = next(p for p in doc["problems"] if p["found"] == "corrupt")
        assert bad["hash"] == corrupt and bad["got"] is not None and bad["got"] != corrupt
    proc = mlv("verify", "--remote", "store", "--full", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert f"model.bin  expected {corrupt}  found: corrupt (got " in proc.stdout
    assert "where: remote store" in proc.stdout
    dog = xxh(b"dog 3")
    assert f"data/images/dogs/d3.jpg  expected {dog}  found: missing" in proc.stdout


def test_a_clone_without_cache_reads_trees_from_the_remote(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    code, doc = verify(clone, "--remote", "store")
    assert code == 0, doc["problems"]
    assert doc["remote"]["downloaded"]["objects"] == 4  # the trees, nothing else
    # read into memory, not kept: the cache holds the remote's indexes only
    assert cache_objects(clone) == {}
    assert {p.name for p in (clone / ".mlv/cache").iterdir()} == {"index"}
    missing, _ = break_folder_remote(mlv_repo, remote)
    code, doc = verify(clone, "--remote", "store", "--full")
    assert found(doc) == missing | {("model.bin", "corrupt", "remote")}
    # the cache check of a clone that fetched nothing: everything is missing
    code, doc = verify(clone, "--cache", "model.bin")
    assert found(doc) == {("model.bin", "missing", "cache")}


def test_s3_remote_missing_and_corrupt(
    mlv_repo: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    dataset(mlv_repo)
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/store", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    push_in_two(mlv_repo, "data/labels.csv")  # labels.csv in a pack of its own
    code, doc = verify(mlv_repo, "--remote", "s3", "--full")
    assert code == 0, doc["problems"]
    assert doc["remote"]["url"] == f"s3://{s3_bucket}/store"
    corrupt = xxh(b"a,b\n1,2\n")
    lost, got = s3_break(s3_server, s3_bucket, xxh(b"cat 4"), corrupt)
    paths = paths_of(mlv_repo)
    missing = {(paths[h], "missing", "remote") for h in lost}
    assert ("data/images/cats/c4.jpg", "missing", "remote") in missing
    code, doc = verify(mlv_repo, "--remote", "s3")
    assert found(doc) == missing
    for args in (["--full"], ["--sample", "100"]):
        code, doc = verify(mlv_repo, "--remote", "s3", *args)
        assert code == 1
        assert found(doc) == missing | {("data/labels.csv", "corrupt", "remote")}
        bad = next(p for p in doc["problems"] if p["found"] == "corrupt")
        assert (bad["hash"], bad["got"]) == (corrupt, got)


def test_sample_downloads_about_pct_of_the_bytes(mlv_repo: Path, tmp_path: Path) -> None:
    size = 32 << 10
    files = {f"data/s{i // 100}/f{i}.bin": os.urandom(size) for i in range(400)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=mlv_repo)
    commit_all(mlv_repo, "data")
    mlv("push", cwd=mlv_repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    for repo in (mlv_repo, clone):  # trees from the cache; trees from the remote
        code, doc = verify(repo, "--remote", "store", "--sample", "1", "--seed", "7")
        assert code == 0, doc["problems"]
        remote = doc["remote"]
        total = remote["bytes"]
        assert total >= 400 * size
        downloaded = remote["downloaded"]["bytes"]
        # never more than 1 %, and within one object of it (files are the largest)
        assert total * 0.01 - size < downloaded <= total * 0.01, (downloaded, total)
        assert remote["sample"]["seed"] == 7 and remote["sample"]["percent"] == 1
        assert remote["sample"]["objects"] >= 2
        again = verify(repo, "--remote", "store", "--sample", "1", "--seed", "7")[1]
        assert again["remote"]["sample"] == remote["sample"]  # the seed makes it repeatable
    # without --seed, a random one is chosen and reported
    doc = verify(mlv_repo, "--remote", "store", "--sample", "10")[1]
    assert isinstance(doc["remote"]["sample"]["seed"], int)
    text = mlv("verify", "--remote", "store", "--sample", "10", "--seed", "3", cwd=mlv_repo)
    assert "sample of 10% (seed 3)" in text.stdout


def test_sample_never_passes_pct_and_names_what_it_cannot_draw(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A file larger than PCT % of the bytes would blow the sample's budget: it is never
    drawn, and the summary says so (with --full as the way to check it), so a corrupt big
    object is never passed off as sampled; --full finds it."""
    big = os.urandom(3 << 20)
    files = {"data/big.bin": big} | {f"data/small{i}.txt": b"x%d" % i for i in range(5)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=mlv_repo)
    commit_all(mlv_repo, "data")
    mlv("push", cwd=mlv_repo)
    damage_remote_object(tmp_path / "remote", xxh(big))
    for seed in range(1, 4):
        code, doc = verify(mlv_repo, "--remote", "store", "--sample", "1", "--seed", str(seed))
        remote = doc["remote"]
        assert remote["downloaded"]["bytes"] <= remote["bytes"] * 0.01
        assert remote["sample"]["too_large"] == {"objects": 1, "bytes": len(big)}
        assert code == 0, doc["problems"]  # what was sampled holds
    text = mlv("verify", "--remote", "store", "--sample", "1", cwd=mlv_repo)
    assert "1 file, 3.0 MiB, larger than the sample and not eligible: --full checks them" in (
        text.stdout
    )
    code, doc = verify(mlv_repo, "--remote", "store", "--full")
    assert code == 1
    assert found(doc) == {("data/big.bin", "corrupt", "remote")}


# ---- selection --------------------------------------------------------------------------


def test_revisions_and_changed_since(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    v1 = git("rev-parse", "HEAD", cwd=mlv_repo).stdout.strip()
    (mlv_repo / "data/labels.csv").write_bytes(b"a,b\n5,6\n")
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    # the old labels are needed by v1 only
    folder_object(mlv_repo / ".mlv/cache", xxh(b"a,b\n1,2\n")).unlink()
    assert verify(mlv_repo)[0] == 0
    for args in (["--rev", "HEAD~1"], ["--all-commits"]):
        code, doc = verify(mlv_repo, "--cache", *args)
        assert code == 1
        [problem] = doc["problems"]
        assert (problem["path"], problem["found"], problem["revision"]) == (
            "data/labels.csv",
            "missing",
            v1,
        )
    proc = mlv("verify", "--cache", "--rev", "HEAD~1", cwd=mlv_repo, check=False)
    assert f"data/labels.csv (at {v1[:10]})  expected" in proc.stdout
    # --changed-since: only the pointers that differ from that revision
    remote = tmp_path / "remote"
    model = xxh((mlv_repo / "model.bin").read_bytes())
    assert remove_remote_object(remote, model) == {model}  # pushed alone: its own pack
    code, doc = verify(mlv_repo, "--remote", "store")
    assert found(doc) == {("model.bin", "missing", "remote")}
    code, doc = verify(mlv_repo, "--remote", "store", "--changed-since", v1)
    assert code == 0 and [t["path"] for t in doc["targets"]] == ["data"]
    code, doc = verify(mlv_repo, "--remote", "store", "--changed-since", "HEAD")
    assert code == 0 and doc["targets"] == []


# ---- usage and safety ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sample", "5", "--full", "--remote", "store"], "exclude each other"),
        (["--sample", "0", "--remote", "store"], "--sample"),
        (["--sample", "101", "--remote", "store"], "--sample"),
        (["--sample", "5"], "add --remote NAME"),
        (["--full"], "add --remote NAME"),
        (["--seed", "4", "--remote", "store"], "add --sample"),
        (["--rehash", "--cache"], "add --workspace"),
        (["--changed-since", "HEAD", "--rev", "HEAD"], "--changed-since"),
        (["nothing-here"], "not tracked"),
        (["--remote", "nosuch"], "nosuch"),
    ],
)
def test_bad_usage_exits_2(mlv_repo: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    setup_pushed(mlv_repo, tmp_path)
    assert_error(mlv("verify", *args, cwd=mlv_repo, check=False), 2, needle)


def test_verify_never_changes_workspace_cache_or_remote(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    break_folder_remote(mlv_repo, remote)
    overwrite(folder_object(mlv_repo / ".mlv/cache", xxh(b"cat 1")), b"bad")
    (mlv_repo / "data/labels.csv").write_bytes(b"edited")
    before = (state(mlv_repo), state(remote))
    runs = [
        [],
        ["--rehash"],
        ["--remote", "store", "--full", "--workspace", "--cache"],
        ["--remote", "store", "--sample", "50"],
        ["--all-commits", "--cache", "--remote", "store"],
    ]
    for args in runs:
        assert mlv("verify", *args, cwd=mlv_repo, check=False).returncode == 1, args
    assert (state(mlv_repo), state(remote)) == before
    assert not list((mlv_repo / ".mlv/tmp").glob("verify-*"))  # scratch removed


# ---- the CI examples ----------------------------------------------------------------------


def ci_commands(example: str) -> tuple[dict[str, str], list[list[str]]]:
    """(variables, [commands of each job]) of a CI example, in job order: the `mlv` lines of
    the GitHub workflow's run steps or of the GitLab jobs' scripts, verbatim."""
    doc = yaml.safe_load((EXAMPLES / example).read_text())
    if example.startswith("github"):
        env = {k: str(v) for k, v in doc.get("env", {}).items()}
        jobs = [
            [
                line
                for step in job["steps"]
                for line in str(step.get("run", "")).splitlines()
                if line.strip().startswith("mlv ")
            ]
            for job in doc["jobs"].values()
        ]
    else:
        env = {k: str(v) for k, v in doc.get("variables", {}).items()}
        jobs = [
            [line for line in job["script"] if line.startswith("mlv ")]
            for name, job in doc.items()
            if isinstance(job, dict) and "script" in job
        ]
    return env, jobs


def run_ci(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PATH": os.path.dirname(MLV) + os.pathsep + os.environ["PATH"]}
    return subprocess.run(
        ["bash", "-e", "-c", line], cwd=cwd, env=full, capture_output=True, text=True, timeout=300
    )


def pr_checkout(tmp_path: Path, bucket: str, remote_name: str, name: str) -> tuple[Path, str]:
    """An upstream repository (main: data/train, data/eval pushed to S3) and the checkout a
    CI job gets for a pull request that adds training files and changes an eval file,
    pushed. Returns (checkout, base commit)."""
    upstream = tmp_path / f"{name}-upstream"
    upstream.mkdir()
    git("init", "-q", "-b", "main", cwd=upstream)
    mlv("init", cwd=upstream)
    write_files(upstream, {f"data/train/t{i}.txt": f"train {i}" for i in range(6)})
    write_files(upstream, {f"data/eval/e{i}.txt": f"eval {i}" for i in range(3)})
    mlv("add", "data/train", "data/eval", cwd=upstream)
    mlv("remote", "add", "-d", remote_name, f"s3://{bucket}/store", cwd=upstream)
    commit_all(upstream, "data v1")
    mlv("push", cwd=upstream)
    base = git("rev-parse", "HEAD", cwd=upstream).stdout.strip()
    checkout = tmp_path / f"{name}-ci"
    git("clone", "-q", str(upstream), str(checkout), cwd=tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=checkout)
    mlv("pull", cwd=checkout)
    write_files(checkout, {"data/train/new1.txt": "new 1", "data/train/new2.txt": "new 2"})
    write_files(checkout, {"data/eval/e1.txt": "eval 1, fixed"})
    mlv("add", "data/train", "data/eval", cwd=checkout)
    commit_all(checkout, "more data")
    push_in_two(checkout, "data/eval")  # the fixed eval file in one pack, new1 and new2 in another
    return checkout, base


@pytest.mark.parametrize("example", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_example_commands(
    example: str,
    tmp_path: Path,
    s3_server: S3Server,
    s3_env: dict[str, str],
) -> None:
    variables, (verify_job, evaluate_job) = ci_commands(example)
    assert any("mlv verify" in line for line in verify_job), verify_job
    remote_name = variables["DATA_REMOTE"]
    results = {}
    for kind in ("healthy", "broken"):
        bucket = s3_server.create_bucket()
        checkout, base = pr_checkout(tmp_path, bucket, remote_name, kind)
        # what CI provides: a fresh clone of the PR with no mlv cache, the base branch
        ci = tmp_path / f"{kind}-job"
        git("clone", "-q", "--no-local", str(checkout), str(ci), cwd=tmp_path)
        assert git("rev-parse", "origin/main", cwd=ci).stdout.strip() == base
        env = {
            **variables,
            "GITHUB_BASE_REF": "main",
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        }
        missing = xxh(b"new 2")
        corrupt = xxh(b"eval 1, fixed")
        lost: set[str] = set()
        if kind == "broken":
            lost = s3_break(s3_server, bucket, missing, corrupt)[0]
            assert lost == {missing, xxh(b"new 1")}
        outputs = [run_ci(line, ci, env) for line in verify_job]
        results[kind] = outputs
        if kind == "healthy":
            assert all(p.returncode == 0 for p in outputs), [p.stdout + p.stderr for p in outputs]
            for line in evaluate_job:  # pulls data/eval only, then verifies it
                proc = run_ci(line, ci, env)
                assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
            assert (ci / "data/eval/e1.txt").read_text() == "eval 1, fixed"
            assert not (ci / "data/train").exists()
        else:
            [proc] = outputs
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert "Traceback" not in proc.stderr
            out = proc.stdout
            assert f"data/train/new2.txt  expected {missing}  found: missing" in out, out
            new1 = xxh(b"new 1")
            assert f"data/train/new1.txt  expected {new1}  found: missing" in out, out
            assert f"data/eval/e1.txt  expected {corrupt}  found: corrupt (got " in out, out
            assert "3 problems found" in out


def test_remote_without_a_name_is_the_default_remote(mlv_repo: Path, tmp_path: Path) -> None:
    """`--remote` alone (as `status --remote --check` or `verify --remote`) means core.remote,
    like push and pull; its hints name the remote that was checked."""
    remote = setup_pushed(mlv_repo, tmp_path)
    break_folder_remote(mlv_repo, remote)
    for args in (["--remote", "--check"], ["-r", "--check"], ["--check", "--remote"]):
        proc = mlv("status", *args, cwd=mlv_repo, check=False)
        assert proc.returncode == 0, (args, proc.stderr)  # the indexes still name them
    proc = mlv("verify", "--remote", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    missing = xxh(b"dog 3")
    assert f"expected {missing}  found: missing  where: remote store" in proc.stdout
    assert "`mlv push --verify -r store` re-sends them" in proc.stdout
    code, doc = verify(mlv_repo, "--remote")
    assert code == 1 and doc["repair"] == "mlv push --verify -r store"
    assert_error(mlv("verify", "-r", "nosuch", cwd=mlv_repo, check=False), 2, "no remote named")
