"""`mlv plots show | diff`: the plots that mlv.yaml declares, read as of any revision.

A plot is declared in one of DVC's two forms (docs/pipelines.md, "Plots"):

- under a stage's `plots:`: an output of the stage, `PATH` or `{PATH: {x, y, template, ...}}`;
- in the top-level `plots:` list: `PATH`, `{PATH: {props}}`, or `{NAME: {y: {FILE: FIELD or
  [FIELDS]}, x: FIELD or {FILE: FIELD}, ...}}` (a name whose `y` names the files).

A path may be a folder: each file below it is a plot with the same properties (dvclive's
`dvclive/plots/metrics`). Files ending in .json, .yaml, .yml, .csv or .tsv are data, drawn
as series; .png, .jpg, .jpeg, .gif, .svg and .webp are images, shown as they are.

Each revision is read with its own mlv.yaml, as `mlv metrics` does; a file is read from git
(an out with `cache: false`) or from the cache through the revision's mlv.lock (a cached
out), without checking anything out. What a revision cannot give (a file that does not
parse, an object missing from the cache and the remote, a bad property in an old mlv.yaml)
becomes an error of that revision, not a failure of the command: history is not the
user's to fix. The workspace's mlv.yaml is, so a bad property there is an error.

Everything read from a revision is bounded (MAX_DATA_BYTES and MAX_ROWS per file,
MAX_DIR_FILES per folder, MAX_POINTS in all, PREFETCH_BYTES read ahead) and kept as plain
values: the page that shows them is the CLI's to render and to escape.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import math
import os
import posixpath
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from mlv import git, yamlio
from mlv.core import targets as targets_mod
from mlv.core import view as view_mod
from mlv.core import workspace
from mlv.core.pipeline import revs, spec, vouched
from mlv.core.pipeline.revs import Rev
from mlv.core.repo import Repo
from mlv.core.view import View
from mlv.errors import MlvError, PipelineError, UsageError
from mlv.objects import names
from mlv.util import localfs

DATA_EXTS = (".json", ".yaml", ".yml", ".csv", ".tsv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
LINEAR = "linear"
# DVC's template names that mlv draws. DVC's `linear` is its `smooth` template with the
# smoothing slider at 0.001 (no smoothing) and `simple` is linear without tooltips: all
# three are drawn as the lines they show when the page opens.
TEMPLATES = (
    LINEAR,
    "simple",
    "smooth",
    "scatter",
    "confusion",
    "confusion_normalized",
    "bar_horizontal",
    "bar_horizontal_sorted",
)
CATEGORICAL = ("confusion", "confusion_normalized")
BARS = ("bar_horizontal", "bar_horizontal_sorted")
INDEX_FIELD = "step"  # x when none is given and the rows have no `step`: the row's index
MAX_DATA_BYTES = 16 << 20  # a data file read for a plot (a hostile commit may hold any size)
MAX_DIR_FILES = 500  # files of one plot folder, per revision
# 16 MiB of CSV is 8 million rows of "1": as dicts and points, gigabytes. A file gives at
# most MAX_ROWS rows (the page draws at most 5,000 points of a series anyway), all files
# together at most MAX_POINTS points, and a folder's files read ahead at most
# PREFETCH_BYTES (500 files of 16 MiB would be 8 GiB held at once).
MAX_ROWS = 200_000
MAX_POINTS = 2_000_000
PREFETCH_BYTES = 64 << 20
MAX_IMAGE_BYTES = 64 << 20  # an image copied next to the page
# all images copied for one page: a clone of 11 MB (60 MiB SVGs of spaces compress well)
# had a plot folder of 40 of them written out as 2.4 GB, 500 of them would be 32 GB
MAX_IMAGES_BYTES = 256 << 20
# all data files read for one page (each at most MAX_DATA_BYTES): files that give no
# points (a revision's 500 files that do not parse) would otherwise be read, or fetched
# from the remote, without end over many revisions
MAX_READ_BYTES = 1 << 30
MAX_TARGETS = 1000
_FLOAT_MAX = int(sys.float_info.max)


@dataclass(frozen=True)
class Source:
    """One file (or folder) of a plot, with the fields it draws. x None: `step` when the
    rows have it, else the row index; y empty: the last field of the first row that is not
    x (DVC's choice)."""

    file: str
    x: str | None = None
    y: tuple[str, ...] = ()


@dataclass(frozen=True)
class Definition:
    """A plot as one revision's mlv.yaml declares it, with checked properties."""

    id: str
    sources: tuple[Source, ...]
    template: str = LINEAR
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None


@dataclass
class Series:
    """The points one field of one file gives at one revision. For linear, simple and
    scatter: (x, y) numbers; bars: (value, category); confusion: (actual, predicted)."""

    rev: Rev
    file: str
    x: str
    y: str
    points: list[tuple[Any, Any]]
    skipped: int = 0  # rows without a finite number (or a value at all) for x or y
    template: str = LINEAR  # the template its revision declared (the points' shape)


@dataclass
class Image:
    rev: Rev
    file: str
    saved: str | None = None  # its name in the output folder, once copied there


@dataclass
class Plot:
    """One plot of the page: its properties (from the newest revision that declares it),
    and the series and images of every revision."""

    id: str
    template: str
    title: str | None
    x_label: str | None
    y_label: str | None
    series: list[Series] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    rev: Rev
    file: str
    why: str


@dataclass
class Result:
    revs: list[Rev]
    plots: list[Plot] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)


# ---- what mlv.yaml declares --------------------------------------------------------------


def definitions(pipe: spec.Pipeline) -> list[Definition]:
    """Every plot of a pipeline: stage plots first (in stage order), then the top-level
    ones; a top-level entry whose id is a stage plot's path replaces that one's properties.
    Raises PipelineError naming the plot for a property mlv cannot draw."""
    found: dict[str, Definition] = {}
    for stage in pipe.stages.values():
        for plot in stage.plots:
            where = f"{spec.PIPELINE_FILE}: stage '{stage.name}': plots {_shown(plot.id)}"
            found[plot.id] = _definition(plot.id, dict(plot.props), where, plot.id)
    for plot in pipe.plots:
        where = f"{spec.PIPELINE_FILE}: plots: {_shown(plot.id)}"
        props = dict(plot.props)
        path = None if isinstance(props.get("y"), dict) else _top_path(plot.id, where)
        definition = _definition(plot.id if path is None else path, props, where, path)
        found[definition.id] = definition
    return list(found.values())


def _shown(value: Any) -> str:
    """A value from mlv.yaml as a message shows it: a name as it is unless it holds a
    control character, anything else as Python writes it, at most 60 characters (a
    commit's mlv.yaml may hold anything)."""
    text = value if isinstance(value, str) and not names.has_control(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _top_path(raw: str, where: str) -> str:
    if raw.startswith("/") or "\\" in raw or "\0" in raw:
        raise PipelineError(f"{where}: {_shown(raw)} must be a relative path inside the repository")
    if names.has_control(raw):  # git's batch reads take one name a line
        raise PipelineError(f"{where}: {_shown(raw)} {names.CONTROL}", "rename the file")
    path = posixpath.normpath(raw)
    if path in (".", "..") or path.startswith("../"):
        raise PipelineError(
            f"{where}: {_shown(raw)} is outside the repository",
            "name a file, or give the plot a name and its files in `y: {FILE: FIELD}`",
        )
    reason = names.problem(path, line=False)
    if reason is not None:  # .git in any spelling, or .mlv at the root: as a stage's plots
        raise PipelineError(
            f"{where}: {_shown(raw)} {reason}: not read", f"take it out of {spec.PIPELINE_FILE}"
        )
    return path


def _definition(pid: str, props: dict[str, Any], where: str, path: str | None) -> Definition:
    template = props.get("template", LINEAR)
    if template not in TEMPLATES:
        raise PipelineError(
            f"{where}: unknown template {_shown(repr(template))}",
            f"use one of {', '.join(TEMPLATES)}",
        )
    texts = {k: _text(props.get(k), k, where) for k in ("title", "x_label", "y_label")}
    x, y = props.get("x"), props.get("y")
    if path is not None:  # the id is the file; x and y are fields of it
        sources: tuple[Source, ...] = (Source(path, _field(x, "x", where), _fields(y, where)),)
    else:
        if not y:
            raise PipelineError(
                f"{where}: `y` names no files", "write `y: {FILE: FIELD}` or `y: {FILE: [FIELDS]}`"
            )
        sources = tuple(
            Source(
                _top_path(str(file), where),
                _x_for(x, str(file), where),
                _fields(fields, where) or _missing_y(where, str(file)),
            )
            for file, fields in y.items()
        )
    if template in CATEGORICAL:
        for src in sources:
            if src.x is None or len(src.y) != 1:
                raise PipelineError(
                    f"{where}: a {template} plot needs `x` (the actual class's field) and one "
                    "`y` (the predicted class's field)",
                    "e.g. `{x: actual, y: predicted, template: confusion}`",
                )
    return Definition(pid, sources, str(template), **texts)


def _missing_y(where: str, file: str) -> tuple[str, ...]:
    raise PipelineError(f"{where}: `y` of {file} names no field", "write `{FILE: FIELD}`")


def _x_for(x: Any, file: str, where: str) -> str | None:
    if isinstance(x, dict):
        return _field(x.get(file), "x", where)
    return _field(x, "x", where)


def _field(value: Any, key: str, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    raise PipelineError(f"{where}: `{key}` must be a field name, got {_shown(value)}")


def _fields(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(dict.fromkeys(value))
    raise PipelineError(f"{where}: `y` must be a field name or a list of them, got {_shown(value)}")


def _text(value: Any, key: str, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise PipelineError(f"{where}: `{key}` must be text, got {_shown(value)}")


# ---- reading files as of a revision --------------------------------------------------------


class _Files:
    """The files of one revision: the workspace on disk, or a commit through a View (git's
    files, and the cached outs its pointers and mlv.lock name)."""

    def __init__(self, repo: Repo, commit: str | None, chosen: Sequence[str] = ()) -> None:
        self.repo = repo
        self.commit = commit
        self.chosen = chosen  # files and folders the user named: read whatever git says
        self._view: View | None = None
        self._blobs: dict[str, bytes] = {}  # git's files read ahead (prefetch)
        self._gate: vouched.Gate | None = None  # the workspace's: which files are printed

    def _chosen(self, path: str) -> bool:
        """The user named path, or a folder above it, as a target (not mlv.yaml), and no
        link leads it elsewhere: a committed link in that folder is the gate's."""
        named = any(path == c or path.startswith(c + "/") for c in self.chosen)
        top = os.path.realpath(self.repo.root)
        return named and os.path.realpath(os.path.join(top, path)) == os.path.join(top, path)

    def gate(self) -> vouched.Gate:
        if self._gate is None:
            self._gate = vouched.Gate(self.repo.root, vouched.repo_objects(self.repo))
        return self._gate

    def view(self) -> View:
        """The commit's view, built from its id (View.of_repo would resolve it again)."""
        if self._view is None:
            assert self.commit is not None
            objects = view_mod.Objects(self.repo.cache, view_mod.remote_opener(self.repo, None))
            found = targets_mod.at_commit(self.repo.root, self.commit)
            self._view = View(self.repo.root, self.commit, objects, found)
        return self._view

    def prefetch(self, paths: Sequence[str], limit: int) -> None:
        """Read the files of paths that git tracks at the commit (and that are at most limit
        bytes) through one `git cat-file --batch`, instead of one process each: a plot
        folder of dvclive's holds a file per metric."""
        if self.commit is None:
            return
        view = self.view()
        wanted = []
        total = 0
        for path in paths:
            try:
                node = view.info(path)
            except UsageError:
                continue
            small = node.size is not None and node.size <= limit
            if node.tracked == view_mod.GIT and not node.is_dir and small:
                assert node.size is not None
                total += node.size
                if total > PREFETCH_BYTES:  # the rest is read a file at a time
                    break
                wanted.append(path)
        specs = {f"{self.commit}:{p}": p for p in wanted if not names.has_control(p)}
        for spec_str, data in git.read_blobs(self.repo.root, list(specs)).items():
            self._blobs[specs[spec_str]] = data

    def pipeline_text(self) -> bytes | None:
        return self.read(spec.PIPELINE_FILE, localfs.SMALL_FILE_LIMIT, plot=False)

    def files(self, path: str) -> list[str] | None:
        """path itself when a file, the files below it (sorted) when a folder, None when
        absent. Raises MlvError (too many files, an unreadable tree)."""
        if self.commit is None:
            full = os.path.join(self.repo.root, path)
            if os.path.isfile(full):
                return [path]
            if not os.path.isdir(full):
                return None
            _inside_root(self.repo.root, full, path)
            found = []
            for folder, dirs, entries in os.walk(full):
                dirs[:] = sorted(d for d in dirs if not names.is_git_name(d))  # never a plot
                rel = os.path.relpath(folder, self.repo.root).replace(os.sep, "/")
                found += [f"{rel}/{n}" for n in sorted(entries)]
                _too_many(path, len(found))
            self.gate().ask(found)  # one git call for the folder's files, not one each
            return found
        view = self.view()
        try:
            node = view.info(path)
        except UsageError:
            return None
        if not node.is_dir:
            return [node.path]
        out: list[str] = []
        for child in view.walk(path):
            # a name with a newline cannot be asked of git's batch reader: not a plot
            if not child.is_dir and not names.has_control(child.path):
                out.append(child.path)
                _too_many(path, len(out))
        return out

    def read(self, path: str, limit: int, plot: bool = True) -> bytes | None:
        """The file's bytes; None when absent. MlvError when larger than limit."""
        ahead = self._blobs.pop(path, None)
        if ahead is not None:
            if len(ahead) > limit:
                raise _too_large(path, limit)
            return ahead
        with self._open(path, limit, plot) as fh:
            if fh is None:
                return None
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise _too_large(path, limit)
        return data

    def copy(self, path: str, dest: str, limit: int) -> int | None:
        """Copy the file to dest (at most limit bytes, else _TooLarge); the bytes copied,
        None when absent."""
        with self._open(path, limit, True) as fh:
            if fh is None:
                return None
            tmp = localfs.tmp_name(dest)
            # a new file, never one found there: a link planted at that name (a clone's
            # mlv_plots/static may hold anything) would send the bytes where it points
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                with open(fd, "wb") as out:
                    copied = 0
                    while chunk := fh.read(1 << 20):
                        copied += len(chunk)
                        if copied > limit:
                            raise _too_large(path, limit)
                        out.write(chunk)
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return copied

    def _open(self, path: str, limit: int, plot: bool) -> _Opened:
        """plot: a plot's file, which must not lead out of the repository (the pipeline's
        own files are read as repro reads them)."""
        if self.commit is None:
            full = os.path.join(self.repo.root, path)
            if not os.path.isfile(full):  # a device or a pipe (through a link) is no plot
                return _Opened(None)
            if plot:
                _inside_root(self.repo.root, full, path)
                problem = None if self._chosen(path) else self.gate().refusal(path)
                if problem is not None:  # the CI job's key.json, named or linked: a warning
                    raise MlvError(problem.text())
            else:  # mlv.yaml and its params files: as repro reads them
                workspace.refuse_link_out(self.repo.root, path)
            try:
                fh: BinaryIO = open(full, "rb")  # noqa: SIM115 (closed by _Opened)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return _Opened(None)
            return _Opened(fh)
        view = self.view()
        try:
            node = view.info(path)
        except UsageError:
            return _Opened(None)
        if node.is_dir:
            return _Opened(None)
        if node.size is not None and node.size > limit:
            raise _too_large(path, limit)
        opened: BinaryIO = view.open(path)
        return _Opened(opened)

    def close(self) -> None:
        if self._view is not None:
            self._view.close()


def _inside_root(root: str, full: str, path: str) -> None:
    """A workspace file or folder of a plot lies in the repository, links resolved: a
    clone's `pic.png -> ~/.ssh/id_rsa` would be copied into the page's folder (where a
    `git add` takes it), its text shown in the page and in --json. And no link that git
    tracks leads it into .git or .mlv (workspace's rule, as for metrics and params): a
    clone's `a.svg -> .mlv/config.local.yaml` or `b.png -> .git/config` would publish the
    remote's secrets and git's credentials with the page."""
    real, top = os.path.realpath(full), os.path.realpath(root)
    if os.path.commonpath([real, top]) != top:
        raise MlvError(f"{path} is a symbolic link out of the repository: not read")
    try:
        workspace.refuse_link_out(root, path)
    except MlvError as e:  # a plot's problem is a warning line: the hint goes into it
        raise MlvError(e.text()) from None


class _Opened:
    """A file opened for reading (or None for an absent one), as a context manager."""

    def __init__(self, fh: BinaryIO | None) -> None:
        self.fh = fh

    def __enter__(self) -> BinaryIO | None:
        return self.fh

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()


class _TooLarge(MlvError):
    pass


def _too_large(path: str, limit: int) -> MlvError:
    return _TooLarge(f"{path} is larger than {limit >> 20} MiB, more than a plot reads")


def _too_many(path: str, count: int) -> None:
    if count > MAX_DIR_FILES:
        raise MlvError(f"{path} holds more than {MAX_DIR_FILES} files, more than a plot reads")


# ---- parsing data files ------------------------------------------------------------------


def rows_of(data: bytes, rel: str, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """The records of a data file: CSV or TSV with a header line; JSON or YAML holding a
    list of mappings, or a mapping whose first such list (depth first) is the data, as
    DVC reads `{"train": [{...}, ...]}`. At most limit + 1 of them (more than limit: the
    file has more). Raises PipelineError saying what is wrong."""
    lower = rel.lower()
    if lower.endswith((".csv", ".tsv")):
        text = data.decode("utf-8-sig", "replace")
        delimiter = "\t" if lower.endswith(".tsv") else ","
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
            return [
                {str(k): _cell(v) for k, v in row.items() if k is not None}
                for row in itertools.islice(reader, limit + 1)
            ]
        except csv.Error as e:
            kind = "CSV" if delimiter == "," else "TSV"
            raise PipelineError(f"{rel}: not valid {kind}: {e}") from None
    is_json = lower.endswith(".json")
    try:
        doc = yamlio.loads_json(data) if is_json else yamlio.loads(data)
    except yamlio.LimitError as e:
        raise PipelineError(f"{rel}: {e}") from None
    except (ValueError, yamlio.YAMLError):
        raise PipelineError(f"{rel}: not valid {'JSON' if is_json else 'YAML'}") from None
    records = _records(doc, limit + 1)
    if records is None:
        raise PipelineError(
            f"{rel}: no list of records to plot",
            'write a list of mappings, e.g. [{"step": 0, "loss": 0.9}, ...]',
        )
    return records


def _records(doc: Any, limit: int) -> list[dict[str, Any]] | None:
    if isinstance(doc, list):
        if doc and all(isinstance(r, dict) for r in doc):
            return [{str(k): revs.plain(v) for k, v in r.items()} for r in doc[:limit]]
        return None
    if isinstance(doc, dict):
        for value in doc.values():
            found = _records(value, limit)
            if found is not None:
                return found
    return None


def _cell(value: str | None) -> Any:
    """A CSV cell: a number when it reads as one (int first), else the text."""
    if value is None:
        return None
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return value


def _number(value: Any) -> float | int | None:
    """A finite number that a float holds (a JSON integer may be any size), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= _FLOAT_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def series_of(
    rows: list[dict[str, Any]], src: Source, template: str, rev: Rev, file: str
) -> list[Series]:
    """One Series per y field of src, in the shape the template draws."""
    if not rows:
        return []
    x = src.x or (INDEX_FIELD if INDEX_FIELD in rows[0] else None)
    ys = src.y or _infer_y(rows[0], x)
    out = []
    for y in ys:
        points: list[tuple[Any, Any]] = []
        skipped = 0
        for i, row in enumerate(rows):
            xv = row.get(x) if x is not None else i
            yv = row.get(y)
            if template in CATEGORICAL:
                if xv is None or yv is None:
                    skipped += 1
                    continue
                points.append((_label(xv), _label(yv)))
            elif template in BARS:
                value, label = _number(xv), yv
                if value is None or label is None:
                    skipped += 1
                    continue
                points.append((value, _label(label)))
            else:
                xn, yn = _number(xv), _number(yv)
                if xn is None or yn is None:
                    skipped += 1
                    continue
                points.append((xn, yn))
        out.append(Series(rev, file, x or INDEX_FIELD, y, points, skipped, template))
    return out


def _infer_y(first: dict[str, Any], x: str | None) -> tuple[str, ...]:
    fields = [k for k in first if k != x]
    return (fields[-1],) if fields else ()


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---- show and diff -----------------------------------------------------------------------


def diff_revisions(repo: Repo, names: Sequence[str]) -> list[Rev]:
    """The revisions `mlv plots diff` compares, as DVC's plots diff: none named, HEAD and
    the workspace; one, it and the workspace; more, those alone."""
    if not repo.scm:
        raise UsageError("mlv plots diff needs a git repository", "run `git init` and commit first")
    for name in names:
        if not name.strip():
            raise UsageError("a revision is empty: name a commit, branch or tag")
    if not names:
        return [*revs.resolve(repo.root, ["HEAD"]), revs.workspace_rev()]
    found = revs.resolve(repo.root, list(names))
    if len(found) == 1:
        found.append(revs.workspace_rev())
    return found


def collect(
    repo: Repo,
    rev_list: Sequence[Rev],
    targets: Sequence[str] = (),
    image_dir: str | None = None,
) -> Result:
    """The plots of every revision (oldest named first, as given), limited to targets (plot
    ids or files, a file mlv.yaml does not declare included, drawn as DVC would with
    default properties). Images are copied into image_dir when given."""
    if len(targets) > MAX_TARGETS:
        raise UsageError(f"more than {MAX_TARGETS} targets", "name fewer plots")
    wanted = [_target(repo, t) for t in targets]
    result = Result(list(rev_list))
    by_id: dict[str, Plot] = {}
    matched: set[str] = set()
    # in all: points to read, image bytes to copy, data bytes to read
    budget = [MAX_POINTS, MAX_IMAGES_BYTES, MAX_READ_BYTES]
    for index, rev in enumerate(rev_list):
        files = _Files(repo, rev.commit, wanted)
        try:
            defs = _defs_at(files, rev, result)
            if wanted:
                defs, hit = _select(defs, wanted)
                matched |= hit
            for d in defs:
                _read_plot(files, rev, index, d, by_id, result, image_dir, budget)
        finally:
            files.close()
    for t in wanted:
        plot = by_id.get(t)
        drawn = plot is not None and (plot.series or plot.images)
        if t not in matched and not drawn and not any(e.file == t for e in result.errors):
            raise UsageError(
                f"{t}: no such plot or file in {_rev_names(rev_list)}",
                "name a plot of mlv.yaml (`mlv plots show` lists them) or a data file",
            )
    for plot in by_id.values():
        _same_shape(plot, result)
    result.plots = list(by_id.values())
    return result


def shape(template: str) -> str:
    """What a template's points are: numbers (xy), bars or class pairs (confusion)."""
    if template in CATEGORICAL:
        return "confusion"
    return "bars" if template in BARS else "xy"


def _same_shape(plot: Plot, result: Result) -> None:
    """Drop the series a revision declared with a template of another shape than the plot's
    (the newest revision's): a confusion matrix cannot be drawn on a line plot's axes."""
    kept = []
    for s in plot.series:
        if shape(s.template) == shape(plot.template):
            kept.append(s)
        else:
            why = (
                f"{s.file}: a {s.template} plot there, not drawn with the newer "
                f"revision's {plot.template} plot"
            )
            result.errors.append(Problem(s.rev, s.file, why))
    plot.series = kept


def _rev_names(rev_list: Sequence[Rev]) -> str:
    return ", ".join(r.name for r in rev_list)


def _target(repo: Repo, raw: str) -> str:
    """A target as a repository-relative path when it names one from the current folder,
    else as typed (a plot's name)."""
    if not raw or names.has_control(raw):
        raise UsageError(f"invalid target {raw!r}", "name a plot of mlv.yaml or a data file")
    full = os.path.abspath(raw)
    rel = os.path.relpath(full, repo.root).replace(os.sep, "/")
    if os.path.exists(full) and not rel.startswith("../"):
        return rel
    return raw


def _defs_at(files: _Files, rev: Rev, result: Result) -> list[Definition]:
    try:
        text = files.pipeline_text()
        if text is None:
            return definitions(spec.Pipeline())

        def read(rel: str) -> bytes | None:  # params files of its templating, same revision
            if files.commit is None:  # the workspace's: only those it vouches for, as
                # for params and metrics (a pull request's `vars: [gcp-key.json]` would
                # put the CI job's key into the plot ids the page shows)
                workspace.refuse_link_out(files.repo.root, rel)
                problem = files.gate().refusal(rel)
                if problem is not None:
                    raise PipelineError(problem.message, problem.hint)
            return files.read(rel, localfs.SMALL_FILE_LIMIT, plot=False)

        return definitions(spec.parse(text, spec.PIPELINE_FILE, read))
    except MlvError as e:
        if rev.commit is None:
            raise
        result.errors.append(Problem(rev, spec.PIPELINE_FILE, e.message))
        return []


def _select(defs: list[Definition], wanted: list[str]) -> tuple[list[Definition], set[str]]:
    """The definitions targets name (by id, by file, or a file inside a plot folder); a
    target that names none is a plot of its own with default properties."""
    chosen: dict[str, Definition] = {}
    hit: set[str] = set()
    for t in wanted:
        for d in defs:
            if d.id == t:
                chosen[d.id] = d
                hit.add(t)
                continue
            for src in d.sources:
                if src.file == t:
                    chosen[d.id] = d
                    hit.add(t)
                elif t.startswith(src.file + "/"):
                    chosen[t] = Definition(
                        t, (Source(t, src.x, src.y),), d.template, d.title, d.x_label, d.y_label
                    )
                    hit.add(t)
        if t not in hit:
            chosen[t] = Definition(t, (Source(t),))
    return list(chosen.values()), hit


def _plot(by_id: dict[str, Plot], pid: str, d: Definition) -> Plot:
    plot = by_id.get(pid)
    if plot is None:
        plot = by_id[pid] = Plot(pid, d.template, d.title, d.x_label, d.y_label)
    else:  # the newest revision's properties win (revisions come oldest first)
        plot.template, plot.title = d.template, d.title
        plot.x_label, plot.y_label = d.x_label, d.y_label
    return plot


def _read_plot(
    files: _Files,
    rev: Rev,
    index: int,
    d: Definition,
    by_id: dict[str, Plot],
    result: Result,
    image_dir: str | None,
    budget: list[int],
) -> None:
    """Read d's files at rev into its plot; each file of a plot folder is a plot of its own
    (id: the file), as DVC draws `dvclive/plots/metrics` one metric per plot. budget: the
    points still to be read (MAX_POINTS), the image bytes still to be copied
    (MAX_IMAGES_BYTES) and the data bytes still to be read (MAX_READ_BYTES); a file once
    its part is spent is a problem."""
    for src in d.sources:
        try:
            found = files.files(src.file)
        except MlvError as e:
            result.errors.append(Problem(rev, src.file, e.message))
            continue
        if found == [src.file]:
            _plot(by_id, d.id, d)
        files.prefetch([f for f in found or [] if f.lower().endswith(DATA_EXTS)], MAX_DATA_BYTES)
        for file in found or []:
            plot = _plot(by_id, d.id if file == src.file else file, d)
            lower = file.lower()
            try:
                if lower.endswith(IMAGE_EXTS):
                    plot.images.append(_image(files, rev, index, file, image_dir, budget))
                elif lower.endswith(DATA_EXTS):
                    limit = min(MAX_ROWS, budget[0] // max(len(src.y), 1))
                    if limit <= 0:
                        raise MlvError(
                            f"{file}: not read: the page holds {MAX_POINTS:,} points already "
                            "(name fewer plots or revisions)"
                        )
                    if budget[2] <= 0:
                        raise MlvError(
                            f"{file}: not read: the page read {MAX_READ_BYTES >> 20} MiB of "
                            "data already (name fewer plots or revisions)"
                        )
                    try:
                        data = files.read(file, MAX_DATA_BYTES)
                    except _TooLarge:  # read up to the limit, or refused before: counted
                        budget[2] -= MAX_DATA_BYTES
                        raise
                    if data is not None:
                        budget[2] -= len(data)
                        rows = rows_of(data, file, limit)
                        del data
                        if len(rows) > limit:
                            del rows[limit:]
                            why = f"{file}: only its first {limit:,} rows read"
                            result.errors.append(Problem(rev, file, why))
                        drawn = series_of(rows, src, d.template, rev, file)
                        budget[0] -= max(sum(len(s.points) for s in drawn), len(rows))
                        plot.series += drawn
                elif file == src.file:  # named alone, it had better be something mlv draws
                    result.errors.append(
                        Problem(
                            rev,
                            file,
                            f"{file}: not a plot file (data: {', '.join(DATA_EXTS)}; "
                            f"images: {', '.join(IMAGE_EXTS)})",
                        )
                    )
            except MlvError as e:
                result.errors.append(Problem(rev, file, e.message))


def _image(
    files: _Files, rev: Rev, index: int, file: str, image_dir: str | None, budget: list[int]
) -> Image:
    image = Image(rev, file)
    if image_dir is not None:
        name = f"{index}_{_safe_name(file)}"
        room = min(MAX_IMAGE_BYTES, budget[1])
        spent = MlvError(
            f"{file}: not copied: the page's images hold {MAX_IMAGES_BYTES >> 20} MiB "
            "already (name fewer plots or revisions)"
        )
        if room <= 0:
            raise spent
        try:
            copied = files.copy(file, os.path.join(image_dir, name), room)
        except _TooLarge:
            if room < MAX_IMAGE_BYTES:
                raise spent from None
            raise
        if copied is not None:
            budget[1] -= copied
            image.saved = name
    return image


def _safe_name(file: str) -> str:
    """A file name for a copy of file: its path with every character but letters, digits,
    '.', '-' and '_' as '_', and its extension kept (a browser types images by it)."""
    stem, ext = posixpath.splitext(file)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in stem)
    tag = hashlib.sha256(file.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{safe.strip('.')[-80:] or 'image'}_{tag}{ext.lower()}"
