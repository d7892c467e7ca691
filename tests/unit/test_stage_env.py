"""The environment of a stage's commands (mlv.core.pipeline.stage_env)."""

from __future__ import annotations

import os

from mlv.core.pipeline.stage_env import HOOK_DIR, stage_env


def test_names_the_repository_and_stage_and_adds_the_hook_first() -> None:
    env = stage_env("/repo", "train", {"PATH": "/bin"})
    assert env["MLV_ROOT"] == "/repo" and env["MLV_STAGE"] == "train"
    assert env["PATH"] == "/bin"
    assert env["PYTHONPATH"] == HOOK_DIR  # no empty entry: that would add the current folder
    assert env["DVC_ROOT"] == os.path.join("/repo", ".mlv", "tmp", "dvclive")
    assert os.path.isfile(os.path.join(HOOK_DIR, "sitecustomize.py"))


def test_keeps_the_callers_python_path_and_dvc_root() -> None:
    base = {"PYTHONPATH": os.pathsep.join(["/a", "", HOOK_DIR, "/b"]), "DVC_ROOT": "/dvc"}
    env = stage_env("/repo", "s", base)
    assert env["PYTHONPATH"].split(os.pathsep) == [HOOK_DIR, "/a", "", "/b"]
    assert env["DVC_ROOT"] == "/dvc"  # inside a DVC pipeline already: DVC's to decide
    assert base["PYTHONPATH"].split(os.pathsep)[0] == "/a"  # the caller's mapping untouched
