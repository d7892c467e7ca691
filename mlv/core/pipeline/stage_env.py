"""The environment of a stage's commands: MLV_ROOT, MLV_STAGE, and what keeps dvclive (the
metrics logger of DVC projects) from turning the repository into a DVC one.

dvclive's `Live()` looks for a DVC repository and, in a git repository without one, runs
`dvc init` there (`.dvc/`, `.dvcignore`, both staged in git); outside a DVC pipeline it
also saves each run as a DVC experiment (a commit under `refs/exps/`). No argument of
`Live()` and no environment variable turns the first off, so mlv does what `dvc repro`
does for the second and adds one small start-up hook for the first:

- DVC_ROOT, the variable `dvc repro` sets for its stages, tells dvclive it runs inside a
  pipeline: no experiment is saved. It names .mlv/tmp/dvclive, where dvclive leaves the
  progress marks it writes for DVC's VS Code extension.
- PYTHONPATH gains pyhook/, whose sitecustomize.py makes dvclive see no DVC repository
  (it then logs to its folder as usual) and then runs the sitecustomize it shadows, if
  any. It acts only when a stage imports dvclive.

docs/decisions.md ("dvclive under mlv") has the measurements and what was tried first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

HOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyhook")
DVC_ROOT = "DVC_ROOT"


def stage_env(root: str, stage: str, base: Mapping[str, str]) -> dict[str, str]:
    """base (the environment mlv runs in) with what a stage's commands are given."""
    env = dict(base, MLV_ROOT=root, MLV_STAGE=stage)
    if DVC_ROOT not in env:  # set already: mlv runs inside a DVC pipeline, which decides
        env[DVC_ROOT] = os.path.join(root, ".mlv", "tmp", "dvclive")
    existing = env.get("PYTHONPATH", "")  # an empty entry in it is the current folder: kept
    paths = [p for p in existing.split(os.pathsep) if p != HOOK_DIR] if existing else []
    env["PYTHONPATH"] = os.pathsep.join([HOOK_DIR, *paths])
    return env
