"""mlv.yaml: the stages of a pipeline and the standards its metrics must meet.

    stages:
      prepare:
        cmd: python prepare.py
        deps: [raw, prepare.py]
        params: [prepare.split]            # keys of params.yaml
        outs: [data/prepared]
      train:
        cmd: python train.py
        wdir: .                            # paths below are relative to it
        deps: [data/prepared, train.py]
        params: [train, {other.yaml: [seed]}]
        outs: [model.bin, {logs: {cache: false, persist: true}}]
        metrics: [metrics.json]
    checks:
      - accuracy >= 0.90
      - loss <= baseline.loss * 1.05

Everything here is the user's; mlv only reads this file, except `mlv stage add`, which
appends a stage. DVC's templating (`vars`, `${...}`, `foreach`, `matrix`) is expanded
first, by templating.py, into plain stages (`train@0.1`); paths are then resolved once,
here, to repository-relative posix paths, so the rest of the pipeline code never sees a
wdir nor a template.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mlv import yamlio
from mlv.core.pipeline import templating
from mlv.errors import EXIT_USAGE, PipelineError, rpath
from mlv.objects import names

PIPELINE_FILE = "mlv.yaml"
LOCK_FILE = "mlv.lock"
DEFAULT_PARAMS = "params.yaml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# GROUP@KEY: a stage that foreach or matrix generated (templating checks KEY)
_GENERATED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*@[A-Za-z0-9_.+=-]+")
_STAGE_KEYS = {
    "cmd",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "wdir",
    "desc",
    "always_changed",
    "frozen",
}
_OUT_KEYS = {"cache", "persist"}
# DVC's plot properties, kept as given for `mlv plots` (which checks their values)
PLOT_KEYS = {"x", "y", "template", "title", "x_label", "y_label"}
NAME_HINT = "use letters, digits, '_', '-' and '.', starting with one"
# NUL is left alone: it marks a path in a message (mlv.errors.rpath), which the CLI quotes
_CONTROL = re.compile("[\x01-\x1f\x7f\udc80-\udcff]")


class UnknownStageError(PipelineError):
    """A stage name given on the command line that mlv.yaml does not define: bad usage."""

    exit_code = EXIT_USAGE


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Out:
    """A stage output. cache=False: git tracks it (a small file), mlv only records its hash.
    persist=True: not deleted before the stage runs."""

    path: str
    cache: bool = True
    persist: bool = False


@dataclass(frozen=True)
class ParamRef:
    """Keys (dotted paths) of one parameters file; no keys: every key of the file."""

    file: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plot:
    """A plot: a stage's plot output (id = its path) or an entry of the top-level `plots:`
    (id = a path or a free name). props are DVC's plot properties (x, y, template, title,
    x_label, y_label) as written, values unchecked here."""

    id: str
    props: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: tuple[str, ...]  # commands run one after another, in wdir, by the shell
    wdir: str = ""  # repository-relative; "" is the root
    deps: tuple[str, ...] = ()
    params: tuple[ParamRef, ...] = ()
    outs: tuple[Out, ...] = ()
    metrics: tuple[str, ...] = ()  # outputs that git tracks, read by `mlv metrics`
    desc: str | None = None
    # plot outputs: each is also in outs (cached unless `cache: false`), with its properties
    plots: tuple[Plot, ...] = ()
    always_changed: bool = False  # runs on every repro, as DVC's always_changed
    frozen: bool = False  # never run by repro; its lock entry is only checked

    @property
    def command(self) -> str:
        """The command as recorded in mlv.lock (one line per command)."""
        return "\n".join(self.cmd)

    @functools.cached_property
    def out_paths(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outs) + self.metrics


@dataclass(frozen=True)
class Pipeline:
    stages: dict[str, Stage] = field(default_factory=dict)  # in file order
    checks: tuple[str, ...] = ()
    plots: tuple[Plot, ...] = ()  # the top-level `plots:` section

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            raise UnknownStageError(
                f"no stage named '{name}' in {rpath(PIPELINE_FILE)} (stages: {self._known()})"
            ) from None

    def expand_names(self, names: Iterable[str]) -> list[str]:
        """Stage names as given on a command line, a foreach/matrix group's name standing
        for every stage it generates (`train` -> `train@0.1`, `train@0.2`), as in DVC. An
        unknown name raises UnknownStageError."""
        found: list[str] = []
        for name in names:
            if name in self.stages:
                found.append(name)
                continue
            members = [n for n in self.stages if n.startswith(name + templating.JOIN)]
            if not members or templating.JOIN in name:
                self.stage(name)  # raises, naming the stages there are
            found.extend(members)
        return list(dict.fromkeys(found))

    def _known(self) -> str:
        """The stage names for a message: a group as `train@*` (N stages), so that a
        matrix of a thousand stages does not fill the screen."""
        shown: dict[str, list[str]] = {}
        for name in self.stages:
            group, join, _ = name.partition(templating.JOIN)
            shown.setdefault(f"{group}@*" if join else name, []).append(name)
        return (
            ", ".join(
                members[0] if len(members) == 1 else f"{key} ({len(members)})"
                for key, members in shown.items()
            )
            or "none"
        )


def load(root: str, gated: bool = True) -> Pipeline:
    """The pipeline of the repository at root; empty when there is no mlv.yaml.

    gated (the default): a params file its templating reads (`vars`, params.yaml) must be
    one the workspace vouches for (vouched.py: git tracks it, or mlv records its bytes), as
    for the commands that print values: a pull request's `vars: [gcp-key.json]` would put
    the CI job's key into the stage names and commands that dag, status, `repro --dry`,
    params/metrics/exp/plots print. Only a `mlv repro` that runs stages (and `mlv commit`,
    which records them as a run would) passes gated=False: it runs the commands anyway."""
    path = os.path.join(root, PIPELINE_FILE)
    from mlv.core.workspace import refuse_link_out
    from mlv.util import localfs

    try:
        refuse_link_out(root, PIPELINE_FILE)  # a clone's mlv.yaml -> a file of the user's
        text = localfs.read_small(path)
    except FileNotFoundError:
        return Pipeline()
    return parse(text, rpath(PIPELINE_FILE), disk_reader(root, gated))


def disk_reader(root: str, gated: bool = False) -> templating.Reader:
    """Reads the params files that templating names, from the workspace at root. A file
    that a symbolic link (itself or a folder above it) leads out of the repository, or into
    .git, is refused: the clone chose the link, and git reads none of its own files through
    one either. A link that stays inside is followed. gated: a file that vouched.Gate
    refuses (untracked, unrecorded) is an error naming it and its `git add` hint, its
    values unread (load)."""
    from mlv.util import localfs

    top = os.path.realpath(root)
    gate: list[Any] = []  # the Gate, made when a file is first read (vouched imports us)

    def read(rel: str) -> bytes | None:
        path = os.path.join(root, rel)
        target = os.path.relpath(os.path.realpath(path), top).replace(os.sep, "/")
        if target == ".." or target.startswith("../") or os.path.isabs(target):
            where = "out of the repository"
        elif names.problem(target, line=False) is not None:
            where = f"to {target}"
        else:
            where = ""
        if where:
            raise PipelineError(
                f"{rel} is a symbolic link {where}, not followed",
                "make it a regular file in the repository",
            )
        if gated:
            if not gate:
                from mlv.core.pipeline import vouched

                gate.append(vouched.Gate(root, _cache_reader(root)))
            refusal = gate[0].refusal(rel)
            if refusal is not None:
                raise PipelineError(refusal.message, refusal.hint)
        try:
            return localfs.read_small(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError:
            raise PipelineError(
                f"{rel} is a folder, not a parameters file",
                f"move it away, or fix the `vars` of {PIPELINE_FILE}",
            ) from None
        except OSError as e:
            raise PipelineError(
                f"{rel}: cannot read it ({e.strerror})", "make it a readable parameters file"
            ) from None

    return read


def parse(
    text: str | bytes, where: str = PIPELINE_FILE, read: templating.Reader | None = None
) -> Pipeline:
    """The pipeline that text (mlv.yaml's content) defines. read gives the params files
    that its templating uses (params.yaml and `vars`), as of the same revision; without
    it, a template that needs one fails with an error naming the missing value.

    A PipelineError's text quotes what the file (or a params file) holds: a key, a
    reference, a file name, any of which may hold a newline or a terminal escape sequence.
    Those are written as escapes (`\\n`, `\\x1b`), so that the error stays one line and
    nothing reaches the terminal as a control sequence."""
    try:
        return _parse(text, where, read)
    except PipelineError as e:
        e.marked_message = _printable(e.marked_message)
        e.marked_hint = _printable(e.marked_hint) if e.marked_hint else e.marked_hint
        raise


def _printable(text: str) -> str:
    """text with each control character (and byte that is not UTF-8) as its Python escape."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _parse(text: str | bytes, where: str, read: templating.Reader | None) -> Pipeline:
    try:
        doc = yamlio.loads_strict(text)
    except yamlio.DuplicateKeyError as e:
        raise PipelineError(
            f"{where}: line {e.line}: {e.key!r} is given twice", "keep one of them"
        ) from None
    except yamlio.LimitError as e:
        raise PipelineError(f"{where}: {e}", "fix the file") from None
    except ValueError as e:  # a constructor refused a scalar: 5,000 digits, a 13th month
        why = "a number has too many digits" if "digits" in str(e) else str(e)
        raise PipelineError(f"{where}: a value cannot be read ({why})", "fix the file") from None
    except yamlio.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise PipelineError(f"{where}:{line} is not valid YAML", "fix the syntax") from None
    if doc is None:
        return Pipeline()
    if not isinstance(doc, dict):
        raise PipelineError(f"{where}: expected a mapping with `stages:`")
    _refuse_unknown(
        doc,
        {"stages", "checks", "plots", templating.VARS},
        f"{where}: unknown key(s)",
        "the top level holds `vars:`, `stages:`, `plots:` and `checks:`",
    )
    stages_doc = doc.get("stages") or {}
    if not isinstance(stages_doc, dict):
        raise PipelineError(f"{where}: `stages` must be a mapping of stage names")
    for name in stages_doc:
        if not valid_name(str(name)):
            at = f"{where}: stage '{name}'"
            if templating.JOIN in str(name):
                raise PipelineError(
                    f"{at}: '@' is kept for the stages that foreach and matrix generate",
                    "rename the stage without it",
                )
            raise PipelineError(f"{at}: invalid name", NAME_HINT)
    doc = templating.expand(doc, where, read)
    stages_doc = doc.get("stages") or {}
    stages = {}
    for name, body in stages_doc.items():
        stage = _stage(str(name), body, where)
        stages[stage.name] = stage
    checks_doc = doc.get("checks") or []
    if not isinstance(checks_doc, list) or not all(isinstance(c, str) for c in checks_doc):
        raise PipelineError(
            f"{where}: `checks` must be a list of expressions", "e.g. `- accuracy >= 0.9`"
        )
    plots_doc = doc.get("plots") or []
    if not isinstance(plots_doc, list):
        raise PipelineError(
            f"{where}: `plots` must be a list of files or {{NAME: {{x: .., y: ..}}}}"
        )
    plots = tuple(_plot(p, f"{where}: plots") for p in plots_doc)
    return Pipeline(stages, tuple(checks_doc), plots)


def _plot(raw: Any, at: str) -> Plot:
    """A top-level plot entry: a path, or {id: props}; the id is kept as written (a path
    relative to the root, or a name whose props' `y` names the files)."""
    if isinstance(raw, str) and raw.strip():
        return Plot(raw)
    if isinstance(raw, dict) and len(raw) == 1:
        ((pid, props),) = raw.items()
        return Plot(str(pid), _plot_props(props, f"{at}: {pid}"))
    raise PipelineError(f"{at}: entries are file paths or {{NAME: {{x: .., y: ..}}}}, got {raw!r}")


def _refuse_unknown(
    mapping: dict[Any, Any], allowed: set[str], what: str, hint: str, listed: bool = False
) -> None:
    """Refuse the keys of mapping outside allowed, in one line: `WHAT a, b: HINT`; listed:
    the hint goes on with the allowed keys (built only when refusing: a matrix may make
    10,000 stages)."""
    unknown = set(mapping) - allowed
    if unknown:
        if listed:
            hint = f"{hint} {', '.join(sorted(allowed))}"
        raise PipelineError(f"{what} {', '.join(sorted(map(str, unknown)))}", hint)


def _plot_props(props: Any, at: str) -> tuple[tuple[str, Any], ...]:
    props = props or {}
    if not isinstance(props, dict):
        raise PipelineError(f"{at}: plot properties must be a mapping")
    _refuse_unknown(props, PLOT_KEYS, f"{at}: unknown plot propert(ies)", "a plot has", True)
    return tuple((str(k), v) for k, v in props.items())


def _stage(name: str, body: Any, where: str) -> Stage:
    at = f"{where}: stage '{name}'"
    if not valid_name(name) and not _GENERATED.fullmatch(name):
        raise PipelineError(f"{at}: invalid name", NAME_HINT)
    if not isinstance(body, dict):
        raise PipelineError(f"{at}: expected a mapping with `cmd:`")
    _refuse_unknown(body, _STAGE_KEYS, f"{at}: unknown key(s)", "a stage has", True)
    cmd = body.get("cmd")
    if isinstance(cmd, str):
        cmds: tuple[str, ...] = (cmd,)
    elif isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        cmds = tuple(cmd)
    else:
        raise PipelineError(f"{at}: `cmd` must be a command or a list of commands")
    if not any(c.strip() for c in cmds):
        raise PipelineError(f"{at}: `cmd` is empty")
    wdir = _path(body.get("wdir", "."), "", f"{at}: wdir")
    deps = tuple(_path(d, wdir, f"{at}: deps") for d in _list(body, "deps", at))
    params = tuple(_param(p, wdir, at) for p in _list(body, "params", at))
    outs = tuple(_out(o, wdir, at) for o in _list(body, "outs", at))
    metrics = tuple(_metric(m, wdir, at) for m in _list(body, "metrics", at))
    plot_outs = [_plot_out(p, wdir, at) for p in _list(body, "plots", at)]
    outs += tuple(out for out, _ in plot_outs)
    flags = {}
    for key in ("always_changed", "frozen"):
        value = body.get(key, False)
        if not isinstance(value, bool):
            raise PipelineError(f"{at}: `{key}` must be true or false")
        flags[key] = value
    desc = body.get("desc")
    seen: set[str] = set()
    for path in [o.path for o in outs] + list(metrics):
        if path == "" or path in (PIPELINE_FILE, LOCK_FILE):
            what = "the repository root" if path == "" else path
            raise PipelineError(
                f"{at}: an output cannot be {what}", "name the files or folders the stage writes"
            )
        if path in seen:
            raise PipelineError(f"{at}: output {path} is listed twice")
        if names.has_control(path):  # its .gitignore line would split
            raise PipelineError(
                f"{at}: output {path!r} {names.CONTROL}",
                "a .gitignore line cannot hold it: rename it without line breaks",
            )
        seen.add(path)
    return Stage(
        name,
        cmds,
        wdir,
        deps,
        params,
        outs,
        metrics,
        str(desc) if desc else None,
        tuple(plot for _, plot in plot_outs),
        **flags,
    )


def _list(body: dict[str, Any], key: str, at: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PipelineError(f"{at}: `{key}` must be a list")
    return value


def _path(raw: Any, wdir: str, at: str) -> str:
    """A repository-relative posix path for raw, relative to wdir; refuses escapes."""
    if not isinstance(raw, str) or not raw.strip():
        raise PipelineError(f"{at}: expected a path, got {raw!r}")
    if raw.startswith("/") or "\\" in raw or "\0" in raw:
        raise PipelineError(f"{at}: {raw!r} must be a relative path inside the repository")
    joined = os.path.normpath(os.path.join(wdir, raw)).replace(os.sep, "/")
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith("../"):
        raise PipelineError(f"{at}: {raw!r} is outside the repository")
    reason = names.problem(joined, line=False)
    if reason is not None:  # .git in any spelling git refuses, or .mlv at the root
        raise PipelineError(f"{at}: {raw!r} {reason}: {names.refusing(reason)}")
    return joined


def _param(raw: Any, wdir: str, at: str) -> ParamRef:
    if isinstance(raw, str):
        return ParamRef(_path(DEFAULT_PARAMS, wdir, at), (raw,))
    if isinstance(raw, dict) and len(raw) == 1:
        ((file, keys),) = raw.items()
        if keys is None:
            keys = []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise PipelineError(f"{at}: params of {file}: expected a list of keys")
        return ParamRef(_path(str(file), wdir, f"{at}: params"), tuple(keys))
    raise PipelineError(
        f"{at}: params entries are keys of {DEFAULT_PARAMS} or {{FILE: [keys]}}, got {raw!r}"
    )


def _out(raw: Any, wdir: str, at: str) -> Out:
    if isinstance(raw, str):
        return Out(_path(raw, wdir, f"{at}: outs"))
    if isinstance(raw, dict) and len(raw) == 1:
        ((path, opts),) = raw.items()
        opts = opts or {}
        if not isinstance(opts, dict) or set(opts) - _OUT_KEYS:
            raise PipelineError(f"{at}: outs {path}: options are `cache` and `persist`")
        for key in opts:
            if not isinstance(opts[key], bool):
                raise PipelineError(f"{at}: outs {path}: `{key}` must be true or false")
        return Out(
            _path(str(path), wdir, f"{at}: outs"),
            opts.get("cache", True),
            opts.get("persist", False),
        )
    raise PipelineError(f"{at}: outs entries are paths or {{PATH: {{cache: .., persist: ..}}}}")


def _metric(raw: Any, wdir: str, at: str) -> str:
    """A metrics file: a path, or DVC's `{PATH: {cache: false}}` (git tracks every metrics
    file in mlv, so `cache: false` is all there is to say)."""
    if isinstance(raw, dict) and len(raw) == 1:
        ((path, opts),) = raw.items()
        if opts is not None and (
            not isinstance(opts, dict) or set(opts) - {"cache"} or opts.get("cache") is not False
        ):
            raise PipelineError(
                f"{at}: metrics {path}: git tracks metrics files, so the only option is "
                "`cache: false`",
                "list the file under `outs:` for mlv to cache it",
            )
        raw = str(path)
    return _path(raw, wdir, f"{at}: metrics")


def _plot_out(raw: Any, wdir: str, at: str) -> tuple[Out, Plot]:
    """A stage's plot output: a path, or {PATH: {cache, persist, x, y, template, ...}}."""
    if isinstance(raw, str):
        out = Out(_path(raw, wdir, f"{at}: plots"))
        return out, Plot(out.path)
    if isinstance(raw, dict) and len(raw) == 1:
        ((path, opts),) = raw.items()
        if not isinstance(opts or {}, dict):
            raise PipelineError(f"{at}: plots {path}: options must be a mapping")
        opts = dict(opts or {})
        out_opts = {k: opts.pop(k) for k in _OUT_KEYS if k in opts}
        for key, value in out_opts.items():
            if not isinstance(value, bool):
                raise PipelineError(f"{at}: plots {path}: `{key}` must be true or false")
        out = Out(_path(str(path), wdir, f"{at}: plots"), **out_opts)
        return out, Plot(out.path, _plot_props(opts, f"{at}: plots {path}"))
    raise PipelineError(f"{at}: plots entries are paths or {{PATH: {{x: .., y: .., cache: ..}}}}")


# ---- writing (mlv stage add) ------------------------------------------------------------


def add_stage(
    root: str,
    name: str,
    body: dict[str, Any],
    force: bool = False,
    check: Callable[[Pipeline], object] | None = None,
) -> Stage:
    """Append (or with force, replace) a stage in mlv.yaml; returns it as parsed. check
    sees the whole new pipeline first and may refuse it (by raising).

    The file is rewritten through YAML: comments and formatting in it are not kept.
    """
    from mlv.util import localfs

    path = os.path.join(root, PIPELINE_FILE)
    try:
        text = localfs.read_small(path)
    except FileNotFoundError:
        text = b""
    read = disk_reader(root)
    parse(text, rpath(PIPELINE_FILE), read)  # refuse to rewrite a file that does not parse
    doc = yamlio.loads(text) or {}
    stages = doc.setdefault("stages", {}) if isinstance(doc, dict) else None
    if stages is None:
        stages = doc["stages"] = {}
    if name in stages and not force:
        raise PipelineError(
            f"stage '{name}' already exists in {rpath(PIPELINE_FILE)}", "use --force to replace it"
        )
    stages[name] = body
    pipeline = parse(yamlio.dumps(doc), rpath(PIPELINE_FILE), read)
    if check is not None:
        check(pipeline)
    stage = pipeline.stages[name]
    localfs.write_text_atomic(path, yamlio.dumps(doc))
    return stage


def _cache_reader(root: str) -> Callable[[str], bytes]:
    """A cache object's bytes by hash id, the repository opened only when a file inside a
    folder mlv records asks (so `mlv commit`, the hint for such a file, makes it pass)."""

    def read(hash_id: str) -> bytes:
        from mlv.core.repo import Repo

        return Repo(root).cache.read_bytes(hash_id)

    return read
