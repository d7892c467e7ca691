"""DVC's templating of dvc.yaml, for mlv.yaml: `vars`, `${...}`, `foreach` and `matrix`.

expand() turns the document as written into the plain document that spec.parse checks:
`vars` gone, every `${...}` replaced, each foreach/matrix group replaced by the stages it
generates (`train@0.1`, `train@us`, `train@cnn-64`), in file order. The semantics are DVC's
(dvc/parsing), so a templated dvc.yaml ports by renaming it:

- the context is params.yaml beside the pipeline file (when there is one), then each entry
  of the top-level `vars` (a mapping, or `FILE`, or `FILE:KEY1,KEY2` for some top-level
  keys); a stage's own `vars` add to it for that stage, files relative to its wdir. A key
  defined twice by two sources is an error, as in DVC (mappings merge key by key).
- `${a.b}`, `${list[0]}`: a whole value `${x}` keeps the value's type (a number stays a
  number); inside a string it is written out (`true`/`false` for booleans). Lists and
  mappings cannot be written into a stage field, except a mapping in `cmd`, which becomes
  `--key value` arguments. `\\${` is a literal `${`. Values are inserted once, never
  interpolated again, so nothing can recurse.
- `foreach: LIST | MAPPING | ${ref}` with `do:` (`${item}`, and `${key}` for a mapping);
  `matrix: {NAME: LIST | ${ref}, ...}` beside the stage's fields (`${item.NAME}`, `${key}`).

Everything comes from files a clone may hold, so the expansion is bounded: at most
MAX_STAGES generated stages (a matrix product is counted before anything is built),
MAX_NODES values and MAX_CHARS characters produced in all; params files are read through
the caller's reader (bounded size and depth), and their paths may not leave the repository.
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
from collections.abc import Callable
from typing import Any

from mlv.errors import PipelineError
from mlv.objects import names
from mlv.util import localfs

Reader = Callable[[str], "bytes | None"]  # a repository-relative file's bytes, None: absent

VARS = "vars"
FOREACH = "foreach"
DO = "do"
MATRIX = "matrix"
JOIN = "@"
DEFAULT_PARAMS = "params.yaml"
RESERVED = ("item", "key")

MAX_STAGES = 10_000
MAX_NODES = 1_000_000
MAX_CHARS = 16_000_000

# ${inner}, not preceded by a backslash (DVC's KEYCRE); inner is checked by _EXPR
_REF = re.compile(r"(?<!\\)\$\{(?P<inner>[^}]*)\}")
_EXPR = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[[^.\[\]]+\])*")
# what follows `@` in a generated name: safe in mlv.lock, messages, MLV_STAGE and a shell
_KEY = re.compile(r"[A-Za-z0-9_.+=-]+")
_SCALARS = (str, int, float, bool, type(None))
# what a value may be to be written as text: a scalar, or a YAML date (written as given);
# not a set (whose order changes from one process to the next), bytes or an omap's tuples
_TEXT = (*_SCALARS, datetime.date)
_INDEX = re.compile(r"[0-9]{1,18}")  # a list index: ASCII digits, short enough for int()
_MISSING = object()


def is_templated(doc: dict[str, Any]) -> bool:
    """Does doc use templating at all? A plain file is passed through untouched (and no
    params file is read for it)."""
    if VARS in doc:
        return True
    stages = doc.get("stages")
    if isinstance(stages, dict):
        for body in stages.values():
            if isinstance(body, dict) and not {FOREACH, MATRIX, DO, VARS}.isdisjoint(body):
                return True
    return _has_ref(doc)


def _has_ref(node: Any) -> bool:
    stack = [node]
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "${" in value:
                return True
        elif isinstance(value, dict | list):
            if id(value) in seen:  # a YAML alias: the same object met again
                continue
            seen.add(id(value))
            stack.extend(value.keys() if isinstance(value, dict) else ())
            stack.extend(value.values() if isinstance(value, dict) else value)
    return False


def expand(doc: dict[str, Any], where: str, read: Reader | None) -> dict[str, Any]:
    """doc with its templating applied (see the module's docstring); doc itself when it
    uses none. read gives the files `vars` and the default params.yaml name (None: no file
    can be read, as for a text parsed without a repository)."""
    if not is_templated(doc):
        return doc
    return _Expander(where, read).document(doc)


class _Context:
    """The values `${...}` may name, and where they came from (for messages)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: list[str] = []
        self.loaded: dict[str, set[str] | None] = {}  # file -> top-level keys (None: all)
        self.overlay: dict[str, Any] = {}  # item and key of a generated stage, over values

    def copy(self) -> _Context:
        new = self.shared(self.overlay)
        new.values = dict(self.values)
        new.sources = list(self.sources)
        new.loaded = {k: (None if v is None else set(v)) for k, v in self.loaded.items()}
        return new

    def shared(self, overlay: dict[str, Any]) -> _Context:
        """This context with overlay on top, sharing (not copying) the rest: a foreach of
        thousands of stages costs no copy of params.yaml per stage."""
        new = _Context()
        new.values, new.sources, new.loaded = self.values, self.sources, self.loaded
        new.overlay = overlay
        return new

    def top(self, name: str) -> Any:
        if name in self.overlay:
            return self.overlay[name]
        return self.values.get(name, _MISSING)

    def describe(self) -> str:
        if not self.sources:
            return f"any source: there is no {DEFAULT_PARAMS} and no `vars`"
        return " or ".join(dict.fromkeys(self.sources))


class _Expander:
    def __init__(self, where: str, read: Reader | None) -> None:
        self.where = where
        self.read = read
        self.nodes = 0
        self.chars = 0
        self.stages = 0
        self.checked: set[int] = set()  # `vars` lists found free of ${...}
        self.files: dict[str, dict[str, Any] | None] = {}  # params files read (None: absent)

    def error(self, at: str, message: str, hint: str | None = None) -> PipelineError:
        return PipelineError(
            f"{self.where}: {at}: {message}" if at else f"{self.where}: {message}", hint
        )

    # ---- the document ----------------------------------------------------------------

    def document(self, doc: dict[str, Any]) -> dict[str, Any]:
        ctx = _Context()
        self._load_file(ctx, DEFAULT_PARAMS, "", "", required=False)
        self._load_vars(ctx, doc.get(VARS), "", "vars")
        out = {k: v for k, v in doc.items() if k != VARS}
        stages = doc.get("stages")
        if isinstance(stages, dict):
            generated: dict[str, Any] = {}
            for name, body in stages.items():
                self._stage(str(name), body, ctx, generated)
            out["stages"] = generated
        plots = doc.get("plots")
        if isinstance(plots, list):
            out["plots"] = [self.resolve(p, ctx, "plots", None) for p in plots]
        return out

    def _stage(self, name: str, body: Any, ctx: _Context, into: dict[str, Any]) -> None:
        at = f"stage '{name}'"
        if JOIN in name:
            raise self.error(
                at,
                f"'{JOIN}' is kept for the names of stages that foreach and matrix generate",
                "rename the stage without it",
            )
        if not isinstance(body, dict) or not (FOREACH in body or MATRIX in body or DO in body):
            into[name] = self._entry(name, body, ctx)
            return
        if MATRIX in body:
            if FOREACH in body or DO in body:
                raise self.error(at, "a stage has `matrix:` or `foreach:` and `do:`, not both")
            template = {k: v for k, v in body.items() if k != MATRIX}
            members = self._matrix(at, body[MATRIX], ctx)
        else:
            if FOREACH not in body or DO not in body:
                missing = DO if FOREACH in body else FOREACH
                raise self.error(at, f"`foreach:` and `do:` go together; `{missing}:` is missing")
            extra = set(body) - {FOREACH, DO}
            if extra:
                raise self.error(
                    at,
                    f"a foreach stage holds only `foreach:` and `do:`, not "
                    f"{', '.join(sorted(map(str, extra)))}",
                    "move those keys into `do:`",
                )
            template = body[DO]
            if not isinstance(template, dict):
                raise self.error(at, "`do:` must be a stage (a mapping with `cmd:`)")
            members = self._foreach(at, body[FOREACH], ctx)
        for key, bound in members:
            if not _KEY.fullmatch(key):
                raise self.error(
                    at,
                    f"{key!r} would make the stage name {name}{JOIN}{key}, which may hold "
                    "only letters, digits and '_', '.', '+', '=', '-' after the '@'",
                    "iterate over a mapping whose keys are such names (`foreach: {NAME: "
                    "VALUE}`), or over values without '/' or spaces",
                )
            generated = f"{name}{JOIN}{key}"
            if generated in into:
                raise self.error(
                    at, f"stage {generated} is generated twice", "make the values distinct"
                )
            self.stages += 1
            if self.stages > MAX_STAGES:
                raise self._too_big(f"templating makes more than {MAX_STAGES:,} stages")
            inner = ctx.shared(bound)
            into[generated] = self._entry(generated, template, inner, reserved=True)

    def _foreach(self, at: str, raw: Any, ctx: _Context) -> list[tuple[str, dict[str, Any]]]:
        data = self.resolve(raw, ctx, f"{at}: foreach", None)
        if isinstance(data, dict):
            if len(data) > MAX_STAGES:
                raise self._too_big(
                    f"{at}: foreach over {len(data):,} entries makes more than "
                    f"{MAX_STAGES:,} stages"
                )
            return [(_to_str(k), {"item": v, "key": _to_str(k)}) for k, v in data.items()]
        if isinstance(data, list):
            if len(data) > MAX_STAGES:
                raise self._too_big(
                    f"{at}: foreach over {len(data):,} entries makes more than "
                    f"{MAX_STAGES:,} stages"
                )
            if any(isinstance(v, dict | list) for v in data):
                return [(str(i), {"item": v}) for i, v in enumerate(data)]
            return [(_to_str(v), {"item": v}) for v in data]
        raise self.error(
            at,
            f"`foreach:` must be a list or a mapping (or ${{NAME}} of one), got {_type(data)}",
        )

    def _matrix(self, at: str, raw: Any, ctx: _Context) -> list[tuple[str, dict[str, Any]]]:
        data = self.resolve(raw, ctx, f"{at}: matrix", None)
        if not isinstance(data, dict) or not data:
            raise self.error(at, "`matrix:` must map names to lists of values")
        total = 1
        for dim, values in data.items():
            if not isinstance(values, list):
                raise self.error(
                    at, f"matrix `{dim}` must be a list (or ${{NAME}} of one), got {_type(values)}"
                )
            total *= len(values)
            if total > MAX_STAGES:
                raise self._too_big(f"{at}: the matrix makes more than {MAX_STAGES:,} stages")
        combos: list[tuple[str, dict[str, Any]]] = [("", {})]
        for dim, values in data.items():
            dim = _to_str(dim)
            combos = [
                (
                    (f"{key}-" if key else "")
                    + (f"{dim}{i}" if isinstance(v, dict | list) else _to_str(v)),
                    {**item, dim: v},
                )
                for key, item in combos
                for i, v in enumerate(values)
            ]
        return [(key, {"item": item, "key": key}) for key, item in combos]

    def _entry(self, name: str, body: Any, ctx: _Context, reserved: bool = False) -> Any:
        """One stage's fields resolved in ctx (plus the stage's own vars)."""
        at = f"stage '{name}'"
        if not isinstance(body, dict):
            return body  # spec.parse says what a stage must be
        self._count(len(body))
        wdir_raw = body.get("wdir", ".")
        wdir = self.resolve(wdir_raw, ctx, f"{at}: wdir", "wdir")
        own_vars = body.get(VARS)
        if own_vars is not None:
            base = _join("", wdir) if isinstance(wdir, str) else None
            if base is None:
                raise self.error(
                    at, f"wdir: {wdir!r} must be a relative path inside the repository"
                )
            ctx = self._copy(ctx)
            self._load_vars(ctx, own_vars, base, f"{at}: vars", reserved)
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == VARS:
                continue
            if key == "wdir":
                new, value = key, wdir
            else:
                new = self._key(key, ctx, at)
                value = self.resolve(value, ctx, f"{at}: {key}", str(key))
            self._put(out, new, value, at)
        return out

    # ---- vars and params files --------------------------------------------------------

    def _load_vars(
        self, ctx: _Context, raw: Any, base: str, at: str, reserved: bool = False
    ) -> None:
        if raw is None:
            return
        if not isinstance(raw, list):
            raise self.error(at, "`vars` must be a list of mappings and params file names")
        if id(raw) not in self.checked and _has_ref(raw):  # a `do:`'s vars: once, not per stage
            raise self.error(
                at, "`${...}` is not allowed in `vars`", "write the values as they are"
            )
        self.checked.add(id(raw))
        for entry in raw:
            if isinstance(entry, str):
                file, _, keys = entry.partition(":")
                wanted = [k.strip() for k in keys.split(",") if k.strip()] or None
                self._load_file(ctx, file, base, at, True, wanted, reserved)
            elif isinstance(entry, dict):
                self._merge(ctx, entry, "vars", at, reserved)
            else:
                raise self.error(
                    at, f"entries are mappings or params file names (FILE[:KEY,...]), got {entry!r}"
                )

    def _load_file(
        self,
        ctx: _Context,
        raw: str,
        base: str,
        at: str,
        required: bool,
        keys: list[str] | None = None,
        reserved: bool = False,
    ) -> None:
        rel = _join(base, raw)
        if not rel or not raw.strip():  # None: outside; "": the root folder itself
            raise self.error(at, f"{raw!r} must be a relative path inside the repository")
        reason = names.problem(rel, line=False)
        if reason is not None:
            raise self.error(at, f"{raw!r} {reason}: {names.refusing(reason)}")
        before = ctx.loaded.get(rel, set())
        if before is None:
            return  # the whole file is in already
        if keys is not None:
            keys = [k for k in keys if k not in before]
            if not keys:
                return
        if rel not in self.files:  # read and parsed once, however many stages name it
            try:
                data = self.read(rel) if self.read is not None else None
                if data is None:
                    self.files[rel] = None
                elif len(data) > localfs.SMALL_FILE_LIMIT:  # a blob of a commit: any size
                    raise PipelineError(
                        f"{rel} is larger than {localfs.SMALL_FILE_LIMIT >> 20} MiB, not read",
                        "keep parameters files small",
                    )
                else:
                    from mlv.core.pipeline import params  # params imports spec, which imports us

                    self.files[rel] = params.parse(data, rel)
            except PipelineError as e:  # the file's own problem, said where it is named
                raise self.error(at, e.message, e.hint) from None
        doc = self.files[rel]
        if doc is None:
            if not required:
                return
            raise self.error(at, f"params file {rel} does not exist", "create it or fix `vars`")
        if keys is not None:
            missing = [k for k in keys if k not in doc]
            if missing:
                raise self.error(
                    at, f"{rel} has no key '{missing[0]}'", f"add it to {rel} or fix `vars`"
                )
            doc = {k: doc[k] for k in keys}
            ctx.loaded[rel] = before | set(keys)
        else:
            ctx.loaded[rel] = None
        self._merge(ctx, doc, rel, at, reserved)

    def _merge(
        self, ctx: _Context, new: dict[str, Any], source: str, at: str, reserved: bool
    ) -> None:
        if reserved:
            taken = [k for k in RESERVED if k in new]
            if taken:
                raise self.error(
                    at,
                    f"{source} defines '{taken[0]}', which foreach and matrix set for each stage",
                    "rename that variable",
                )
        ctx.values = _merged(ctx.values, new, source, ctx.sources, self, at)
        ctx.sources.append(source)

    # ---- interpolation ----------------------------------------------------------------

    def _key(self, key: Any, ctx: _Context, at: str) -> Any:
        if isinstance(key, str) and "${" in key:
            return _to_str(self.resolve(key, ctx, at, "key"))
        return key

    def resolve(self, node: Any, ctx: _Context, at: str, field: str | None) -> Any:
        """node with every `${...}` in its strings (and mapping keys) replaced. field: the
        stage field it belongs to, which decides what a reference may insert (None: any
        value, as in foreach, matrix and the top-level plots)."""
        self._count(1)
        if isinstance(node, str):
            return self._string(node, ctx, at, field)
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for k, v in node.items():
                self._put(out, self._key(k, ctx, at), self.resolve(v, ctx, at, field), at)
            return out
        if isinstance(node, list):
            return [self.resolve(v, ctx, at, field) for v in node]
        return node

    def _put(self, out: dict[Any, Any], key: Any, value: Any, at: str) -> None:
        """out[key] = value, refusing a key that interpolation made equal to another (YAML
        refuses a key written twice; the later one would silently win)."""
        if key in out:
            raise self.error(
                at, f"`{key}` comes out twice", "make the keys distinct after interpolation"
            )
        out[key] = value

    def _string(self, text: str, ctx: _Context, at: str, field: str | None) -> Any:
        if "${" not in text:
            return text
        # No reference ends after the last `}`: without the bound, the pattern would scan
        # to the end of the text from every `${` there (quadratic: `${${${...`).
        matches = list(_REF.finditer(text, 0, text.rfind("}") + 1))
        # each reference is a lookup, redone in every stage a foreach or matrix makes, even
        # when it inserts nothing: they count as values, their text as characters
        self._count(len(matches))
        self._chars(sum(m.end() - m.start() for m in matches))
        if len(matches) == 1 and matches[0].group(0) == text:
            value = self._lookup(matches[0]["inner"], ctx, at, field)
            if field == "cmd" and isinstance(value, dict):
                return self._text(
                    _arguments(value, f"{at}: ${{{matches[0]['inner'].strip()}}}", self)
                )
            self._check_insert(value, matches[0]["inner"], at, field)
            if field == "cmd":  # a command is text, whatever the value's type
                value = _to_str(value)
            if isinstance(value, str):
                self._text(value)
            return value
        parts: list[str] = []
        index = 0
        for match in matches:
            value = self._lookup(match["inner"], ctx, at, field)
            if field == "cmd" and isinstance(value, dict):
                piece = _arguments(value, f"{at}: ${{{match['inner'].strip()}}}", self)
            else:
                if field is None and isinstance(value, dict | list):
                    field = "text"
                self._check_insert(value, match["inner"], at, field or "text")
                piece = _to_str(value)
            parts.append(text[index : match.start()])
            parts.append(piece)
            index = match.end()
        parts.append(text[index:])
        return self._text("".join(parts).replace("\\${", "${"))

    def _check_insert(self, value: Any, expr: str, at: str, field: str | None) -> None:
        if field is None or isinstance(value, _TEXT):
            return
        if isinstance(value, dict | list):
            raise self.error(
                at,
                f"${{{expr}}} is {_type(value)}; only strings, numbers and booleans can be "
                "written into a stage (a mapping in `cmd` becomes --key value arguments)",
                "name one value inside it, e.g. ${" + expr + ".KEY}",
            )
        raise self.error(
            at,
            f"${{{expr}}} is {_type(value)}; only strings, numbers, booleans and "
            "dates can be written into a stage",
            "write the value as a string in the params file",
        )

    def _lookup(self, inner: str, ctx: _Context, at: str, field: str | None) -> Any:
        expr = inner.strip()
        if not _EXPR.fullmatch(expr):
            raise self.error(
                at,
                f"${{{inner}}} is not a reference",
                "write ${name}, ${name.key} or ${name[0]} (\\${ for a literal ${)",
            )
        parts = [p.strip() for p in expr.replace("[", ".").replace("]", "").split(".")]
        value: Any = ctx.top(parts[0])
        if value is _MISSING:
            hint = f"add '{parts[0]}' to {DEFAULT_PARAMS} or to `vars:`"
            if field == "cmd" and len(parts) == 1:  # as in DVC, ${X} is never the shell's
                hint += f"; for the shell's variable write ${expr} or \\${{{expr}}}"
            raise self.error(at, f"${{{expr}}} is not defined in {ctx.describe()}", hint)
        for i, part in enumerate(parts[1:], 1):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and _INDEX.fullmatch(part) and int(part) < len(value):
                value = value[int(part)]
            else:
                prefix = ".".join(parts[:i])
                raise self.error(
                    at,
                    f"${{{expr}}} is not defined: {prefix} ({_type(value)}) has no '{part}'",
                    "fix the reference or the value it names",
                )
        return value

    # ---- bounds -----------------------------------------------------------------------

    def _copy(self, ctx: _Context) -> _Context:
        """A context to add to for one stage, its cost counted: a params.yaml of many
        top-level keys copied for each of thousands of stages must hit the bound."""
        self._count(len(ctx.values) + len(ctx.loaded))
        return ctx.copy()

    def _count(self, n: int) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise self._too_big(f"templating expands to more than {MAX_NODES:,} values")

    def _text(self, text: str) -> str:
        self._chars(len(text))
        return text

    def _chars(self, n: int) -> None:
        self.chars += n
        if self.chars > MAX_CHARS:
            raise self._too_big(f"templating expands to more than {MAX_CHARS:,} characters")

    def _too_big(self, what: str) -> PipelineError:
        return PipelineError(
            f"{self.where}: refused: {what}",
            "generate fewer stages (smaller foreach lists or matrix dimensions)",
        )


def _merged(
    into: dict[str, Any],
    new: dict[str, Any],
    source: str,
    sources: list[str],
    ex: _Expander,
    at: str,
    path: str = "",
) -> dict[str, Any]:
    """into with new merged in, key by key, without changing either (mappings are shared
    with the files they came from). A value defined twice is an error, as in DVC."""
    ex._count(len(into) + len(new))
    out = dict(into)
    for key, value in new.items():
        if not isinstance(key, str):
            continue  # DVC ignores keys that no ${...} can name
        name = f"{path}{key}"
        if key in out:
            if isinstance(out[key], dict) and isinstance(value, dict):
                out[key] = _merged(out[key], value, source, sources, ex, at, name + ".")
                continue
            earlier = " or ".join(dict.fromkeys(sources)) or "an earlier source"
            raise ex.error(
                at,
                f"'{name}' from {source} is already defined by {earlier}",
                "define each variable in one place",
            )
        out[key] = value
    return out


def _join(base: str, raw: str) -> str | None:
    """raw, relative to base (a repository-relative folder), as a repository-relative posix
    path; None when it is absolute or leaves the repository."""
    if not isinstance(raw, str) or raw.startswith("/") or "\\" in raw or "\0" in raw:
        return None
    joined = os.path.normpath(os.path.join(base, raw)).replace(os.sep, "/")
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def _to_str(value: Any) -> str:
    """A value written into a string, as DVC writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else f"a {type(value).__name__}"


def _flatten(value: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{_to_str(key)}"
        if isinstance(item, dict):
            found.extend(_flatten(item, name + "."))
        else:
            found.append((name, item))
    return found


def _arguments(value: dict[str, Any], at: str, ex: _Expander) -> str:
    """A mapping written into `cmd`, as DVC writes it (its default `parsing` settings):
    `--key value` per leaf (dotted keys for nested mappings), `--flag` for true, nothing for
    false, `--key a b` for a list; strings quoted for the shell, and keys too (DVC writes
    them as they are; a key that is a plain word is written the same either way)."""
    leaves = _flatten(value)
    ex._count(len(leaves))  # a mapping of `false` flags writes nothing, but costs its size
    words: list[str] = []
    for key, item in leaves:
        flag = shlex.quote(f"--{key}")
        if isinstance(item, bool):
            if item:
                words.append(flag)
        elif isinstance(item, str):
            words.append(f"{flag} {shlex.quote(item)}")
        elif isinstance(item, list):
            ex._count(len(item))
            args = []
            for element in item:
                if not isinstance(element, _TEXT):
                    raise ex.error(at, f"cannot write {_type(element)} in '{key}' as an argument")
                args.append(shlex.quote(element) if isinstance(element, str) else _to_str(element))
            words.append(" ".join([flag, *args]) if args else "")
        elif isinstance(item, _TEXT):
            words.append(f"{flag} {_to_str(item)}")
        else:
            raise ex.error(at, f"cannot write {_type(item)} in '{key}' as an argument")
    return " ".join(w for w in words if w)
