"""Parameters and metrics as of any revision, without checking anything out.

A revision's view is what its own mlv.yaml names:

- params: every key listed in a stage's `params` (a key naming a mapping stands for each
  leaf below it, `train` -> `train.lr`, `train.epochs`; a file listed without keys gives
  all of its keys). When no stage lists any params (no mlv.yaml, say), every key of
  params.yaml, as DVC does.
- metrics: every file in a stage's `metrics` (JSON when it ends in .json, else YAML),
  flattened to dotted keys. Numbers are numbers; other leaves are kept as they are.

Commits are read from git's object store: one `git cat-file --batch` for every commit's
mlv.yaml and params.yaml, and one more for the other files those name, however many
commits are asked for. The workspace (rev None) is read from disk.

A file that a commit lacks is simply absent; one that does not parse is recorded in
`Snapshot.errors` (file -> why) rather than stopping a walk through history. A broken
mlv.yaml in the workspace is an error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlv import git, yamlio
from mlv.core.pipeline import params as params_mod
from mlv.core.pipeline import spec, vouched
from mlv.core.workspace import refuse_link_out
from mlv.errors import MlvError, PipelineError
from mlv.util import localfs

WORKSPACE = "workspace"

Values = dict[str, dict[str, Any]]  # file -> dotted key -> value
Reader = Callable[[str], "bytes | None"]  # a file's content at one revision, None: absent


@dataclass
class Snapshot:
    """The params and metrics of one revision."""

    commit: str | None  # None: the workspace
    params: Values = field(default_factory=dict)
    metrics: Values = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # file -> why it could not be read
    checks: tuple[str, ...] = ()

    @property
    def rev(self) -> str:
        return self.commit or WORKSPACE


def is_number(value: Any) -> bool:
    """int or float, not bool (YAML's true is not a metric value of 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def is_finite(value: Any) -> bool:
    """A number that is neither NaN nor infinite."""
    return is_number(value) and math.isfinite(value)


def json_safe(value: Any) -> Any:
    """value with every NaN and infinite float (anywhere inside lists and mappings) as the
    string "NaN", "Infinity" or "-Infinity", so that it serialises as strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def read(
    root: str, commits: Sequence[str | None], read_object: vouched.ObjectReader | None = None
) -> list[Snapshot]:
    """One Snapshot per entry of commits (full commit ids, None for the workspace).
    The workspace's files are read only when git tracks them or mlv records them as they
    are (vouched.Gate; read_object reads the cache's folder trees for that), else an error
    of the snapshot names them: their values are printed, which CI posts."""
    ids = list(dict.fromkeys(c for c in commits if c is not None))
    files: dict[tuple[str, str], bytes] = {}
    first = [(c, name) for c in ids for name in (spec.PIPELINE_FILE, spec.DEFAULT_PARAMS)]
    _fetch(root, first, files)
    pipelines: dict[str, spec.Pipeline | str] = {}
    second: list[tuple[str, str]] = []
    for c in ids:
        text = files.get((c, spec.PIPELINE_FILE))
        try:
            read = _commit_reader(root, files, c)
            pipe = (
                spec.parse(text, spec.PIPELINE_FILE, read) if text is not None else spec.Pipeline()
            )
        except PipelineError as e:
            pipelines[c] = e.message
            continue
        pipelines[c] = pipe
        second += [(c, f) for f in _wanted(pipe) if (c, f) not in files]
    _fetch(root, second, files)

    out: list[Snapshot] = []
    for commit in commits:
        if commit is None:
            out.append(_workspace(root, read_object))
            continue
        at = pipelines[commit]
        if isinstance(at, str):
            out.append(Snapshot(commit, errors={spec.PIPELINE_FILE: at}))
            continue
        out.append(_snapshot(commit, at, _blob_reader(files, commit)))
    return out


def _blob_reader(files: dict[tuple[str, str], bytes], commit: str) -> Reader:
    def read_file(rel: str) -> bytes | None:
        return files.get((commit, rel))

    return read_file


def _commit_reader(root: str, files: dict[tuple[str, str], bytes], commit: str) -> Reader:
    """The files a templated mlv.yaml reads (params.yaml, `vars`) as of commit: params.yaml
    is fetched already; another file costs one more `git cat-file`."""

    def read_file(rel: str) -> bytes | None:
        if (commit, rel) not in files:
            _fetch(root, [(commit, rel)], files)
        return files.get((commit, rel))

    return read_file


def _fetch(root: str, wanted: list[tuple[str, str]], into: dict[tuple[str, str], bytes]) -> None:
    specs = {f"{c}:{rel}": (c, rel) for c, rel in wanted if "\n" not in rel}
    for spec_str, data in git.read_blobs(root, list(specs)).items():
        into[specs[spec_str]] = data


def _wanted(pipe: spec.Pipeline) -> list[str]:
    names: list[str] = []
    for stage in pipe.stages.values():
        names += [ref.file for ref in stage.params]
        names += list(stage.metrics)
    return list(dict.fromkeys(names))


def _workspace(root: str, read_object: vouched.ObjectReader | None) -> Snapshot:
    pipe = spec.load(root)
    gate = vouched.Gate(root, read_object)
    gate.ask(_wanted(pipe) or [spec.DEFAULT_PARAMS])  # one git call for all, not one each
    refused: dict[str, str] = {}

    def read_file(rel: str) -> bytes | None:
        if rel in refused:
            return None
        try:
            refuse_link_out(root, rel)  # a clone's metrics.json -> ~/.docker/config.json
            problem = gate.refusal(rel)  # the CI job's ignored gcp-key.json, named or linked
            if problem is not None:
                refused[rel] = problem.text()
                return None
            return localfs.read_small(os.path.join(root, rel))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    snap = _snapshot(None, pipe, read_file)
    snap.errors.update(refused)
    return snap


def _snapshot(commit: str | None, pipe: spec.Pipeline, read_file: Reader) -> Snapshot:
    snap = Snapshot(commit, checks=pipe.checks)
    docs: dict[str, dict[str, Any] | None] = {}

    def doc_of(rel: str) -> dict[str, Any] | None:
        if rel not in docs:
            data = read_file(rel)
            try:
                docs[rel] = params_mod.parse(data, rel) if data is not None else None
            except MlvError as e:
                snap.errors[rel] = e.message
                docs[rel] = None
        return docs[rel]

    refs = [ref for stage in pipe.stages.values() for ref in stage.params]
    if not refs:
        refs = [spec.ParamRef(spec.DEFAULT_PARAMS)]
    for ref in refs:
        doc = doc_of(ref.file)
        if doc is None:
            continue
        found = snap.params.setdefault(ref.file, {})
        if not ref.keys:
            found.update(params_mod.flatten(doc))
            continue
        for key in ref.keys:
            value = params_mod.lookup(doc, key)
            if value is params_mod.MISSING:
                continue
            if isinstance(value, dict) and value:
                found.update(params_mod.flatten(value, key + "."))
            else:
                found[key] = value
    snap.params = {f: {k: plain(x) for k, x in v.items()} for f, v in snap.params.items() if v}

    for stage in pipe.stages.values():
        for rel in stage.metrics:
            if rel in snap.metrics or rel in snap.errors:
                continue
            data = read_file(rel)
            if data is None:
                continue
            try:
                snap.metrics[rel] = {k: plain(x) for k, x in parse_metrics(data, rel).items()}
            except PipelineError as e:
                snap.errors[rel] = e.message
    return snap


def plain(value: Any) -> Any:
    """value with what JSON cannot hold (YAML dates, binary, sets) turned into strings."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def parse_metrics(data: bytes | str, rel: str) -> dict[str, Any]:
    """A metrics file's values by dotted key. Lists are leaves (shown, never compared as
    numbers)."""
    is_json = rel.endswith(".json")
    try:
        doc = yamlio.loads_json(data) if is_json else yamlio.loads(data)
    except yamlio.LimitError as e:
        raise PipelineError(
            f"{rel}: {e}", "fix the file or restore it with `git checkout`"
        ) from None
    except (ValueError, yamlio.YAMLError):
        raise PipelineError(f"{rel}: not valid {'JSON' if is_json else 'YAML'}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PipelineError(f'{rel}: expected a mapping of metrics, e.g. {{"accuracy": 0.9}}')
    return params_mod.flatten({str(k): v for k, v in doc.items()})


# ---- naming revisions ------------------------------------------------------------------


@dataclass(frozen=True)
class Rev:
    """A revision as the user named it, and what git says about it."""

    name: str  # as typed, or "workspace"
    commit: str | None  # None: the workspace
    time: int | None = None
    author: str | None = None
    subject: str | None = None


def workspace_rev() -> Rev:
    return Rev(WORKSPACE, None)


def resolve(root: str, names: Sequence[str]) -> list[Rev]:
    """Each revision name (commit, branch, tag, HEAD~2) with its commit; unknown: error."""
    if not names:
        return []
    ids = [git.rev_parse(root, n) for n in names]
    info = {c[0]: c for c in git.log_commits(root, list(dict.fromkeys(ids)), walk=False)}
    out = []
    for name, commit in zip(names, ids, strict=True):
        _, time, author, subject = info.get(commit, (commit, None, None, None))
        out.append(Rev(name, commit, time, author, subject))
    return out


def history(root: str, limit: int | None, all_commits: bool = False) -> list[Rev]:
    """HEAD's first-parent history (newest first, at most limit), or with all_commits every
    commit of every branch (remote-tracking ones too), every tag and HEAD; not the stash,
    notes or other refs. Empty before the first commit. A revision is named by the local
    branch at it (the first by name), else the tag, else its short hash, as DVC names them."""
    try:
        git.rev_parse(root, "HEAD")
        head = ["HEAD"]
    except MlvError:
        head = []
    if all_commits:
        commits = git.log_commits(root, head, branches_and_tags=True)
    elif not head:
        return []
    else:
        commits = git.log_commits(root, head, limit=limit, first_parent=True)
    names = git.ref_names(root)  # a commit a branch or tag names is shown by that name
    return [Rev(names.get(c[0], [c[0][:7]])[0], c[0], c[1], c[2], c[3]) for c in commits]
