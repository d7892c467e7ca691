"""mlv plots show | diff: the plots of mlv.yaml read as of revisions and drawn into a page.

The data tests read `--json` (the numbers the page draws); the page tests open it in a real
headless Chromium (Debian's package, which .ci/run installs) and check what it rendered: the
DOM it built and the pixels of a screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import assert_error, commit_all, git, mlv, write_files

PY = sys.executable


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def _csv(rows: list[tuple[Any, ...]], header: str = "step,loss,acc") -> str:
    return header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def _json_out(repo: Path, *args: str) -> dict[str, Any]:
    proc = mlv("plots", *args, "--json", cwd=repo)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _series(data: dict[str, Any], plot_id: str) -> dict[tuple[str, str], list[list[Any]]]:
    """(revision, y field) -> points of one plot."""
    (plot,) = [p for p in data["plots"] if p["id"] == plot_id]
    return {(s["rev"], s["y"]): s["points"] for s in plot["series"]}


PIPELINE = {
    "stages": {
        "train": {
            "cmd": "true",
            "plots": [
                {"logs/loss.csv": {"x": "step", "y": ["loss", "acc"], "cache": False}},
                {
                    "classes.json": {
                        "template": "confusion",
                        "x": "actual",
                        "y": "predicted",
                        "cache": False,
                    }
                },
            ],
        }
    },
    "plots": [
        {"roc": {"template": "scatter", "x": "fpr", "y": {"roc.json": "tpr"}, "title": "ROC"}},
        {"importance.tsv": {"template": "bar_horizontal_sorted", "x": "gain", "y": "feature"}},
    ],
}


@pytest.fixture
def plotted(mlv_repo: Path) -> Path:
    """v1 committed (tag v1); the workspace changes loss.csv."""
    write_files(
        mlv_repo,
        {
            "mlv.yaml": _yaml(PIPELINE),
            "logs/loss.csv": _csv([(0, 1.0, 0.1), (1, 0.5, 0.5), (2, 0.25, 0.8)]),
            "classes.json": json.dumps(
                {
                    "test": [
                        {"actual": "cat", "predicted": "cat"},
                        {"actual": "cat", "predicted": "dog"},
                        {"actual": "dog", "predicted": "dog"},
                        {"actual": "dog", "predicted": "dog"},
                    ]
                }
            ),
            "roc.json": json.dumps({"roc": [{"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1}]}),
            "importance.tsv": "feature\tgain\nage\t0.2\nincome\t0.7\n",
        },
    )
    commit_all(mlv_repo, "v1")
    git("tag", "v1", cwd=mlv_repo)
    write_files(mlv_repo, {"logs/loss.csv": _csv([(0, 0.9, 0.2), (1, 0.4, 0.6), (2, 0.2, 0.9)])})
    return mlv_repo


def test_show_draws_the_workspace_plots_of_both_forms(plotted: Path) -> None:
    data = _json_out(plotted, "show")
    assert [r["rev"] for r in data["revisions"]] == ["workspace"]
    assert [p["id"] for p in data["plots"]] == [
        "logs/loss.csv",
        "classes.json",
        "roc",
        "importance.tsv",
    ]
    assert _series(data, "logs/loss.csv") == {
        ("workspace", "loss"): [[0, 0.9], [1, 0.4], [2, 0.2]],
        ("workspace", "acc"): [[0, 0.2], [1, 0.6], [2, 0.9]],
    }
    assert _series(data, "classes.json")[("workspace", "predicted")] == [
        ["cat", "cat"],
        ["cat", "dog"],
        ["dog", "dog"],
        ["dog", "dog"],
    ]
    (roc,) = [p for p in data["plots"] if p["id"] == "roc"]
    assert (roc["template"], roc["title"]) == ("scatter", "ROC")
    assert roc["series"][0]["file"] == "roc.json"
    assert roc["series"][0]["points"] == [[0, 0], [1, 1]]
    assert _series(data, "importance.tsv")[("workspace", "feature")] == [
        [0.2, "age"],
        [0.7, "income"],
    ]
    assert data["errors"] == []

    proc = mlv("plots", "show", cwd=plotted)
    page = plotted / "mlv_plots" / "index.html"
    assert proc.stdout.strip() == str(page)
    text = page.read_text()
    assert text.count('class="series') == 2 + 1 + 1 + 1  # loss, acc; roc; bars; matrix
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "<script" not in text
    # the folder mlv made for the page is ignored by git: `git status` stays clean of it
    assert (
        "mlv_plots" not in git("status", "--porcelain", "--untracked-files=all", cwd=plotted).stdout
    )
    (plotted / "own").mkdir()  # a folder the user made is left as it is
    mlv("plots", "show", "-o", "own", cwd=plotted)
    assert not (plotted / "own" / ".gitignore").exists()


def test_diff_overlays_head_and_the_workspace_by_default(plotted: Path) -> None:
    data = _json_out(plotted, "diff", "--targets", "logs/loss.csv")
    assert [r["rev"] for r in data["revisions"]] == ["HEAD", "workspace"]
    assert [p["id"] for p in data["plots"]] == ["logs/loss.csv"]
    series = _series(data, "logs/loss.csv")
    assert series[("HEAD", "loss")] == [[0, 1.0], [1, 0.5], [2, 0.25]]
    assert series[("workspace", "loss")] == [[0, 0.9], [1, 0.4], [2, 0.2]]

    commit_all(plotted, "v2")
    write_files(plotted, {"logs/loss.csv": _csv([(0, 5, 5)])})
    # two revisions: those alone, the workspace left out (DVC's plots diff)
    data = _json_out(plotted, "diff", "v1", "HEAD", "--targets", "logs/loss.csv")
    assert [r["rev"] for r in data["revisions"]] == ["v1", "HEAD"]
    series = _series(data, "logs/loss.csv")
    assert series[("v1", "loss")] == [[0, 1.0], [1, 0.5], [2, 0.25]]
    assert series[("HEAD", "loss")] == [[0, 0.9], [1, 0.4], [2, 0.2]]
    # one revision: it and the workspace
    data = _json_out(plotted, "diff", "v1", "--targets", "logs/loss.csv")
    assert [r["rev"] for r in data["revisions"]] == ["v1", "workspace"]
    assert _series(data, "logs/loss.csv")[("workspace", "loss")] == [[0, 5]]


def test_cached_plot_outputs_are_read_from_the_cache_at_each_revision(mlv_repo: Path) -> None:
    """A stage's plot is cached by default (not in git): a revision's comes from the cache
    through that revision's mlv.lock."""
    script = (
        "import yaml, json\n"
        "lr = yaml.safe_load(open('params.yaml'))['lr']\n"
        "open('curve.json', 'w').write(json.dumps("
        "[{'epoch': e, 'loss': round(1 / (1 + lr * e), 4)} for e in range(4)]))\n"
        "import os\n"
        "os.makedirs('curves/deep', exist_ok=True)\n"
        "open('curves/deep/lr.tsv', 'w').write(f'step\\tlr\\n0\\t{lr}\\n')\n"
    )
    pipeline = {
        "stages": {
            "train": {
                "cmd": f"{PY} train.py",
                "deps": ["train.py"],
                "params": ["lr"],
                "plots": [{"curve.json": {"x": "epoch", "y": "loss"}}, "curves"],
            }
        }
    }
    write_files(
        mlv_repo, {"train.py": script, "params.yaml": "lr: 1\n", "mlv.yaml": _yaml(pipeline)}
    )
    mlv("repro", cwd=mlv_repo)
    commit_all(mlv_repo, "lr 1")
    assert "curve.json" in (mlv_repo / ".gitignore").read_text()  # cached, not in git
    write_files(mlv_repo, {"params.yaml": "lr: 3\n"})
    mlv("repro", cwd=mlv_repo)
    commit_all(mlv_repo, "lr 3")
    (mlv_repo / "curve.json").unlink()  # not in the workspace: only the cache has them
    shutil.rmtree(mlv_repo / "curves")

    data = _json_out(mlv_repo, "diff", "HEAD~1", "HEAD")
    series = _series(data, "curve.json")
    assert series[("HEAD~1", "loss")] == [[0, 1.0], [1, 0.5], [2, 0.3333], [3, 0.25]]
    assert series[("HEAD", "loss")] == [[0, 1.0], [1, 0.25], [2, 0.1429], [3, 0.1]]
    # a cached folder: its tree, then its files, from the cache
    assert _series(data, "curves/deep/lr.tsv") == {
        ("HEAD~1", "lr"): [[0, 1]],
        ("HEAD", "lr"): [[0, 3]],
    }
    assert data["errors"] == []


def test_images_are_copied_beside_the_page(plotted: Path) -> None:
    pipeline = dict(PIPELINE, plots=[*PIPELINE["plots"], "confusion.png"])
    write_files(plotted, {"mlv.yaml": _yaml(pipeline), "confusion.png": PNG_RED})
    commit_all(plotted, "with an image")
    write_files(plotted, {"confusion.png": PNG_BLUE})
    out = plotted / "report"
    proc = mlv("plots", "diff", "--targets", "confusion.png", "-o", "report", cwd=plotted)
    assert proc.stdout.strip() == str(out / "index.html")
    copies = sorted((out / "static").iterdir())
    assert sorted(p.read_bytes() for p in copies) == sorted([PNG_RED, PNG_BLUE])
    text = (out / "index.html").read_text()
    for p in copies:
        assert f'<img src="static/{p.name}"' in text
    data = _json_out(plotted, "diff", "--targets", "confusion.png")
    (plot,) = data["plots"]
    assert [(i["rev"], i["file"]) for i in plot["images"]] == [
        ("HEAD", "confusion.png"),
        ("workspace", "confusion.png"),
    ]


def test_a_folder_of_plots_is_a_plot_per_file(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            "mlv.yaml": _yaml({"plots": [{"logs": {"x": "step"}}]}),
            "logs/a.tsv": "step\ta\n0\t1\n1\t2\n",
            "logs/sub/b.tsv": "step\tb\n0\t3\n",
        },
    )
    git("add", "logs", cwd=mlv_repo)  # mlv.yaml's plots are drawn from files git tracks
    data = _json_out(mlv_repo, "show")
    assert {p["id"]: p["series"][0]["points"] for p in data["plots"]} == {
        "logs/a.tsv": [[0, 1], [1, 2]],
        "logs/sub/b.tsv": [[0, 3]],
    }


def test_targets_and_undeclared_files(plotted: Path) -> None:
    write_files(plotted, {"extra.csv": "x,y\n1,2\n3,4\n"})
    data = _json_out(plotted, "show", "extra.csv", "roc")
    assert [p["id"] for p in data["plots"]] == ["extra.csv", "roc"]
    assert _series(data, "extra.csv") == {("workspace", "y"): [[0, 2], [1, 4]]}
    assert_error(
        mlv("plots", "show", "nothing.csv", cwd=plotted, check=False),
        2,
        "nothing.csv: no such plot or file",
    )


def test_bad_input_is_one_line_or_a_warning(plotted: Path) -> None:
    bad = dict(PIPELINE, plots=[{"roc.json": {"template": "pie"}}])
    write_files(plotted, {"mlv.yaml": _yaml(bad)})
    assert_error(
        mlv("plots", "show", cwd=plotted, check=False),
        1,
        "plots: roc.json: unknown template 'pie'",
        "use one of linear",
    )
    commit_all(plotted, "bad template")  # history's mistakes are warnings, not failures
    write_files(plotted, {"mlv.yaml": _yaml(PIPELINE)})
    proc = mlv("plots", "diff", "--targets", "roc", cwd=plotted)
    assert "warning: mlv.yaml: plots: roc.json: unknown template 'pie'" in proc.stderr
    assert "at HEAD" in proc.stderr

    write_files(plotted, {"logs/loss.csv": '"unterminated\n', "roc.json": "{not json"})
    proc = mlv("plots", "show", cwd=plotted)
    assert "warning: roc.json: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr

    (plotted / "file").write_text("")
    assert_error(
        mlv("plots", "show", "-o", "file", cwd=plotted, check=False), 2, "file is not a folder"
    )
    assert_error(mlv("plots", "diff", "no-such-rev", cwd=plotted, check=False), 1, "no-such-rev")


def test_a_huge_file_in_history_is_refused_not_read(plotted: Path) -> None:
    big = "step,loss\n" + "0,1.0\n" * ((17 << 20) // 6)
    write_files(plotted, {"logs/loss.csv": big})
    commit_all(plotted, "huge")
    write_files(plotted, {"logs/loss.csv": _csv([(0, 1, 1)])})
    proc = mlv("plots", "diff", "--targets", "logs/loss.csv", "--json", cwd=plotted)
    data = json.loads(proc.stdout)
    assert [(e["rev"], e["file"]) for e in data["errors"]] == [("HEAD", "logs/loss.csv")]
    assert "larger than 16 MiB" in data["errors"][0]["error"]
    assert list(_series(data, "logs/loss.csv")) == [("workspace", "loss"), ("workspace", "acc")]


HOSTILE = '<script>alert("x")</script>'


def test_names_from_the_data_are_escaped(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            "mlv.yaml": _yaml(
                {"plots": [{"m.json": {"title": HOSTILE, "x_label": '"><img src=x>'}}]}
            ),
            "m.json": json.dumps([{"step": 0, HOSTILE: 1}, {"step": 1, HOSTILE: 2}]),
        },
    )
    git("add", "m.json", cwd=mlv_repo)
    mlv("plots", "show", cwd=mlv_repo)
    text = (mlv_repo / "mlv_plots" / "index.html").read_text()
    assert "<script" not in text and "<img src=x>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "script-src &#x27;none&#x27;" in text  # and the page's policy forbids any script


# ---- in a real browser ---------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run installs it)"
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@needs_chromium
def test_chromium_renders_the_series(plotted: Path, tmp_path: Path) -> None:
    """Two series, HEAD's loss falling and the workspace's rising, drawn in their colours:
    the DOM Chromium built holds both polylines with their points (and the hostile title as
    text), and the screenshot has each colour running the way its data runs."""
    rising = _csv([(0, 0.0), (1, 5.0), (2, 10.0)], "step,loss")
    falling = _csv([(0, 10.0), (1, 5.0), (2, 0.0)], "step,loss")
    pipeline = {"plots": [{"loss.csv": {"title": HOSTILE}}]}
    write_files(plotted, {"mlv.yaml": _yaml(pipeline), "loss.csv": falling})
    commit_all(plotted, "falling")
    write_files(plotted, {"loss.csv": rising})
    page = Path(mlv("plots", "diff", cwd=plotted).stdout.strip())
    url = page.as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert dom.count("<polyline") == 2
    assert 'data-rev="HEAD"' in dom and 'data-rev="workspace"' in dom
    assert "<script" not in dom
    assert "&lt;script&gt;alert" in dom

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=900,700", f"--screenshot={shot}", url)
    width, height, pixels = _decode_png(shot.read_bytes())
    for color, direction in (((0x4C, 0x78, 0xA8), "falling"), ((0xF5, 0x85, 0x18), "rising")):
        points = [(x, y) for y in range(height) for x in range(width) if _near(pixels[y][x], color)]
        points = _large_parts(points, 300)  # the line, not its legend's 12x12 swatch
        assert len(points) > 600, f"the {direction} series is not drawn ({len(points)} px)"
        xs = [x for x, _ in points]
        left = [y for x, y in points if x < min(xs) + 20]
        right = [y for x, y in points if x > max(xs) - 20]
        assert max(xs) - min(xs) > 500  # the line spans the x axis (0 to 2)
        top_left = sum(left) / len(left) < sum(right) / len(right)  # y grows downwards
        assert top_left == (direction == "falling"), direction


def _large_parts(points: list[tuple[int, int]], least: int) -> list[tuple[int, int]]:
    """The points in connected groups (8 neighbours) of at least `least` points."""
    todo, kept = set(points), []
    while todo:
        group, stack = [], [todo.pop()]
        while stack:
            x, y = stack.pop()
            group.append((x, y))
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    if (x + dx, y + dy) in todo:
                        todo.remove((x + dx, y + dy))
                        stack.append((x + dx, y + dy))
        if len(group) >= least:
            kept += group
    return kept


def _near(px: tuple[int, ...], color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(px[:3], color, strict=True))


def _decode_png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and rows of pixels of an 8-bit RGB or RGBA PNG (what Chromium's
    screenshots are), non-interlaced."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color_type in (2, 6) and interlace == 0
            channels = 3 if color_type == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[list[tuple[int, ...]]] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[i : i + channels]) for i in range(0, stride, channels)])
        prev = line
    return width, height, rows


def _png(rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + bytes(rgb) * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG_RED = _png((255, 0, 0))
PNG_BLUE = _png((0, 0, 255))


@needs_chromium
def test_chromium_shows_the_copied_images(plotted: Path, tmp_path: Path) -> None:
    write_files(plotted, {"mlv.yaml": _yaml({"plots": ["red.png"]}), "red.png": _png((255, 0, 0))})
    git("add", "red.png", cwd=plotted)
    page = Path(mlv("plots", "show", cwd=plotted).stdout.strip())
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=600,400", f"--screenshot={shot}", page.as_uri())
    width, height, pixels = _decode_png(shot.read_bytes())
    red = sum(_near(pixels[y][x], (255, 0, 0)) for y in range(height) for x in range(width))
    assert red >= 8 * 8  # the image's pixels (the page's policy let the copy load)
    assert os.path.exists(page.parent / "static")


def test_a_template_of_another_shape_in_history_is_a_warning(mlv_repo: Path) -> None:
    """HEAD drew pairs as a confusion matrix, the workspace draws numbers as lines: HEAD's
    series cannot share those axes, and say so instead of failing."""
    rows = json.dumps([{"actual": 1, "predicted": 0}, {"actual": 1, "predicted": 1}])
    matrix = {"plots": [{"p.json": {"template": "confusion", "x": "actual", "y": "predicted"}}]}
    write_files(mlv_repo, {"mlv.yaml": _yaml(matrix), "p.json": rows})
    commit_all(mlv_repo, "matrix")
    write_files(mlv_repo, {"mlv.yaml": _yaml({"plots": [{"p.json": {"x": "actual"}}]})})
    proc = mlv("plots", "diff", cwd=mlv_repo)
    assert "a confusion plot there, not drawn with the newer revision's linear plot" in (
        proc.stderr
    )
    data = _json_out(mlv_repo, "diff")
    assert _series(data, "p.json") == {("workspace", "predicted"): [[1, 0], [1, 1]]}


def test_no_plots_writes_no_page(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"mlv.yaml": _yaml({"stages": {"a": {"cmd": "true"}}})})
    proc = mlv("plots", "show", cwd=mlv_repo)
    assert proc.stdout == ""
    assert "warning: no plots to draw: declare data or image files under `plots:`" in proc.stderr
    assert not (mlv_repo / "mlv_plots").exists()


def test_names_with_a_newline_are_refused_or_skipped(mlv_repo: Path) -> None:
    """git's batch reader takes one name a line: a plot path with a newline in an old
    mlv.yaml is that revision's error; a file with one inside a plot folder is skipped."""
    write_files(
        mlv_repo,
        {
            "mlv.yaml": _yaml({"plots": ["logs", "a\nb.csv"]}),
            "logs/ok.csv": "x,y\n1,2\n",
            "logs/bad\nname.csv": "x,y\n1,3\n",
        },
    )
    commit_all(mlv_repo, "newlines")
    write_files(mlv_repo, {"mlv.yaml": _yaml({"plots": ["logs"]})})
    data = _json_out(mlv_repo, "diff")
    assert [(e["rev"], e["file"]) for e in data["errors"]] == [("HEAD", "mlv.yaml")]
    assert "contains a newline" in data["errors"][0]["error"]
    write_files(mlv_repo, {"mlv.yaml": _yaml({"plots": ["logs"]})})
    commit_all(mlv_repo, "fixed")
    data = _json_out(mlv_repo, "diff", "HEAD")
    assert {(s["rev"], p["id"]) for p in data["plots"] for s in p["series"]} >= {
        ("HEAD", "logs/ok.csv"),
        ("workspace", "logs/ok.csv"),
    }
    assert all("\n" not in p["id"] for p in data["plots"] if p["series"][0]["rev"] == "HEAD")


def test_open_shows_the_page_in_the_users_browser(plotted: Path, tmp_path: Path) -> None:
    """$BROWSER is the browser (Python's webbrowser reads it): a recorder stands in."""
    seen = tmp_path / "seen"
    recorder = tmp_path / "browser.py"
    recorder.write_text(f"import sys\nopen({str(seen)!r}, 'w').write(sys.argv[1])\n")
    browser = f"{sys.executable} {recorder} %s"
    proc = mlv("plots", "show", "--open", cwd=plotted, env={"BROWSER": browser}, process=True)
    page = plotted / "mlv_plots" / "index.html"
    assert proc.stdout.strip() == str(page)
    assert seen.read_text() == page.as_uri()
    assert_error(
        mlv("plots", "diff", "--open", "--json", cwd=plotted, check=False), 2, "choose one"
    )


def test_a_link_in_a_clone_never_sends_the_page_out_of_the_repository(
    plotted: Path, tmp_path: Path
) -> None:
    """A clone may hold `mlv_plots -> elsewhere` or `mlv_plots/static -> elsewhere`: the
    page and its images are not written through them (nor through a link planted where
    an image's temporary copy is made)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("precious\n")
    pipeline = dict(PIPELINE, plots=[*PIPELINE["plots"], "confusion.png"])
    write_files(plotted, {"mlv.yaml": _yaml(pipeline), "confusion.png": PNG_RED})
    (plotted / "mlv_plots").symlink_to(elsewhere)
    commit_all(plotted, "a link for the page")
    assert_error(mlv("plots", "show", cwd=plotted, check=False), 2, "mlv_plots is a symbolic")
    (plotted / "mlv_plots").unlink()
    (plotted / "mlv_plots").mkdir()
    (plotted / "mlv_plots" / "static").symlink_to(elsewhere)
    proc = mlv("plots", "show", cwd=plotted, check=False)
    assert_error(proc, 2, "mlv_plots/static is a symbolic link", "-o DIR")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["index.html"]
    assert (elsewhere / "index.html").read_text() == "precious\n"
    (plotted / "mlv_plots" / "static").unlink()
    if os.environ.get("MLV_TESTS_IN_PROCESS", "1") != "0":  # mlv runs with this pid
        from mlv.core.pipeline.plots import _safe_name
        from mlv.util.localfs import TMP_MARK

        name = f"0_{_safe_name('confusion.png')}"
        static = plotted / "mlv_plots" / "static"
        static.mkdir()
        for n in range(3000):
            (static / f"{TMP_MARK}{os.getpid()}-{n}-{name}").symlink_to(elsewhere / f"t{n}")
        mlv("plots", "show", cwd=plotted, check=False)
        assert sorted(p.name for p in elsewhere.iterdir()) == ["index.html"]


def test_data_read_is_bounded_in_rows_and_points(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 MiB of CSV is 8 million rows (gigabytes as points): a file gives at most
    MAX_ROWS rows, all files at most MAX_POINTS points, each cut said in --json's errors."""
    from mlv.core.pipeline import plots as plots_mod

    rows = plots_mod.MAX_ROWS + 5
    write_files(
        mlv_repo,
        {
            "mlv.yaml": _yaml({"plots": ["long.csv", "logs"]}),
            "long.csv": "step,loss\n" + "".join(f"{i},1\n" for i in range(rows)),
            **{f"logs/m{i}.csv": _csv([(s, s, s) for s in range(10)]) for i in range(4)},
        },
    )
    commit_all(mlv_repo, "long data")
    data = _json_out(mlv_repo, "show", "long.csv")
    assert [len(s["points"]) for s in data["plots"][0]["series"]] == [plots_mod.MAX_ROWS]
    cut = f"long.csv: only its first {plots_mod.MAX_ROWS:,} rows read"
    assert [e["error"] for e in data["errors"]] == [cut]
    if os.environ.get("MLV_TESTS_IN_PROCESS", "1") == "0":
        return  # the rest changes the bounds of the mlv that runs
    monkeypatch.setattr(plots_mod, "MAX_POINTS", 25)
    monkeypatch.setattr(plots_mod, "PREFETCH_BYTES", 100)  # two files read ahead, two alone
    data = _json_out(mlv_repo, "diff", "HEAD", "--targets", "logs")
    drawn = {(s["rev"], s["file"]): len(s["points"]) for p in data["plots"] for s in p["series"]}
    assert drawn == {
        ("HEAD", "logs/m0.csv"): 10,
        ("HEAD", "logs/m1.csv"): 10,
        ("HEAD", "logs/m2.csv"): 5,
    }
    spent = "not read: the page holds 25 points already (name fewer plots or revisions)"
    assert [(e["rev"], e["error"]) for e in data["errors"]] == [
        ("HEAD", "logs/m2.csv: only its first 5 rows read"),
        ("HEAD", f"logs/m3.csv: {spent}"),
    ] + [("workspace", f"logs/m{i}.csv: {spent}") for i in range(4)]


def test_images_copied_for_one_page_are_bounded_in_all(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small clone may hold big images that compress well (40 SVGs of 60 MiB of spaces in
    11 MB of .git were written out as 2.4 GB): a page copies at most MAX_IMAGES_BYTES."""
    if os.environ.get("MLV_TESTS_IN_PROCESS", "1") == "0":
        pytest.skip("changes the bounds of the mlv that runs")
    from mlv.core.pipeline import plots as plots_mod

    files = {f"imgs/i{i}.png": PNG_RED for i in range(3)}
    write_files(mlv_repo, {"mlv.yaml": _yaml({"plots": ["imgs"]}), **files})
    commit_all(mlv_repo, "images")
    monkeypatch.setattr(plots_mod, "MAX_IMAGES_BYTES", 2 * len(PNG_RED))
    proc = mlv("plots", "diff", "HEAD", cwd=mlv_repo)
    assert len(list((mlv_repo / "mlv_plots" / "static").iterdir())) == 2
    assert proc.stderr.count("not copied: the page's images hold 0 MiB already") == 4
    assert proc.stderr.count("\n") == 4


def test_a_workspace_plot_linked_out_of_the_repository_is_not_read(
    plotted: Path, tmp_path: Path
) -> None:
    """A clone's `leak.png -> ~/.ssh/id_rsa` was copied into mlv_plots/static (where a
    `git add -A` takes it), a linked data file or folder shown in the page and --json."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.png").write_text("SECRET KEY\n")
    (secret / "key.csv").write_text("SECRET,KEY\n1,2\n")
    (plotted / "leak.png").symlink_to(secret / "key.png")
    (plotted / "leak.csv").symlink_to(secret / "key.csv")
    (plotted / "leaks").symlink_to(secret)
    (plotted / "inside.csv").symlink_to(plotted / "logs" / "loss.csv")  # inside: drawn
    pipeline = dict(PIPELINE, plots=["leak.png", "leak.csv", "leaks", "inside.csv"])
    write_files(plotted, {"mlv.yaml": _yaml(pipeline)})
    proc = mlv("plots", "show", cwd=plotted)
    for name in ("leak.png", "leak.csv", "leaks"):
        assert f"warning: {name} is a symbolic link out of the repository: not read" in (
            proc.stderr
        )
    static = plotted / "mlv_plots" / "static"
    assert not static.exists() or list(static.iterdir()) == []
    assert "SECRET" not in (plotted / "mlv_plots" / "index.html").read_text()
    data = _json_out(plotted, "show")
    assert "SECRET" not in json.dumps(data)
    assert "inside.csv" in [p["id"] for p in data["plots"] if p["series"]]


def test_data_bytes_read_for_one_page_are_bounded_in_all(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files that give no points (they do not parse) cost no points, but their bytes (read
    from git, the cache or the remote) count: past MAX_READ_BYTES nothing more is read."""
    if os.environ.get("MLV_TESTS_IN_PROCESS", "1") == "0":
        pytest.skip("changes the bounds of the mlv that runs")
    from mlv.core.pipeline import plots as plots_mod

    bad = "{" * 50 + "\n"  # not JSON
    write_files(
        mlv_repo,
        {"mlv.yaml": _yaml({"plots": ["logs"]}), **{f"logs/m{i}.json": bad for i in range(4)}},
    )
    commit_all(mlv_repo, "unreadable logs")
    monkeypatch.setattr(plots_mod, "MAX_READ_BYTES", 2 * len(bad))
    data = _json_out(mlv_repo, "diff", "HEAD")
    spent = "not read: the page read 0 MiB of data already (name fewer plots or revisions)"
    assert [(e["rev"], e["error"]) for e in data["errors"]] == [
        ("HEAD", "logs/m0.json: not valid JSON"),
        ("HEAD", "logs/m1.json: not valid JSON"),
        ("HEAD", f"logs/m2.json: {spent}"),
        ("HEAD", f"logs/m3.json: {spent}"),
    ] + [("workspace", f"logs/m{i}.json: {spent}") for i in range(4)]


def test_committed_plot_links_into_mlv_or_git_are_not_read(mlv_repo: Path, tmp_path: Path) -> None:
    """A clone's `a.svg -> .mlv/config.local.yaml` and `b.png -> .git/config` were copied into
    mlv_plots/static, which CI publishes; data files and a plot folder linked there were
    shown in the page and in --json (security review F4). Links inside the repository are
    still drawn; `git rm -f LINK`, the hint, lets the page be drawn without a warning."""
    links = {
        "a.svg": ".mlv/config.local.yaml",
        "b.png": ".git/config",
        "c.csv": ".git/config",
        "d.csv": "sub/.git/config",  # a repository of the user's inside the clone
        "pics": ".git",  # a plot folder
        "ok.png": "imgs/red.png",  # inside the repository: drawn
    }
    write_files(mlv_repo, {"imgs/red.png": PNG_RED, "mlv.yaml": _yaml({"plots": list(links)})})
    for name, target in links.items():
        (mlv_repo / name).symlink_to(target)
    commit_all(mlv_repo, "links")
    victim = tmp_path / "victim"
    git("clone", "-q", str(mlv_repo), str(victim), cwd=tmp_path)
    git("remote", "set-url", "origin", "https://u:ghp_TOKEN@example.com/x/y", cwd=victim)
    git("init", "-q", "sub", cwd=victim)
    git("remote", "add", "origin", "https://u:ghp_NESTED@example.com/z", cwd=victim / "sub")
    (victim / "sub" / ".git" / "x.csv").write_text("k,v\n1,ghp_NESTED\n")
    mlv("remote", "add", "s3", "s3://b/x", cwd=victim)
    mlv("config", "--local", "remote.s3.secret_access_key", "AWSSECRET", cwd=victim)

    def leaked(text: str) -> bool:
        return any(s in text for s in ("AWSSECRET", "ghp_TOKEN", "ghp_NESTED"))

    proc = mlv("plots", "show", cwd=victim)
    for name in ("a.svg", "b.png", "c.csv", "d.csv", "pics"):
        where = ".mlv" if name == "a.svg" else ".git"
        assert (
            f"warning: {name}: a symbolic link that git tracks leads into {where} "
            f"(to {victim / links[name]}): mlv does not follow such a link: "
            f"remove it (`git rm -f {name}`)"
        ) in proc.stderr, proc.stderr
    assert "ok.png" not in proc.stderr
    page = victim / "mlv_plots"
    assert [p.name.split("_")[1] for p in (page / "static").iterdir()] == ["ok"]
    for folder, _, files in os.walk(page):
        for file in files:
            assert not leaked((Path(folder) / file).read_text("latin-1")), file
    data = _json_out(victim, "show")
    assert not leaked(json.dumps(data))
    # history reads what git holds (a link's text), never what a link leads to
    proc = mlv("plots", "diff", "HEAD", cwd=victim)
    assert not leaked(proc.stdout + proc.stderr)
    for folder, _, files in os.walk(page):
        for file in files:
            assert not leaked((Path(folder) / file).read_text("latin-1")), file
    # the hint
    git("rm", "-q", "-f", "a.svg", "b.png", "c.csv", "d.csv", "pics", cwd=victim)
    proc = mlv("plots", "show", cwd=victim)
    assert "symbolic link" not in proc.stderr
    assert not leaked(proc.stdout + proc.stderr)


@pytest.mark.parametrize("path", [".mlv/config.local.yaml", ".git/x.csv", "sub/.GIT/x.csv"])
def test_a_plot_path_inside_mlv_or_git_is_refused(mlv_repo: Path, path: str) -> None:
    """mlv.yaml's top-level plots may not name a file in .mlv or .git, as a stage's plots
    (outs) may not."""
    (mlv_repo / "mlv.yaml").write_text(_yaml({"plots": [path]}))
    where = ".mlv" if path.startswith(".mlv") else ".git"
    proc = mlv("plots", "show", cwd=mlv_repo, check=False)
    assert_error(proc, 1, f"{path} is inside {where}: not read", "take it out of mlv.yaml")
    (mlv_repo / "mlv.yaml").write_text(_yaml({"plots": []}))  # the hint
    assert "no plots to draw" in mlv("plots", "show", cwd=mlv_repo).stderr


def test_a_committed_pipeline_link_out_is_not_read(mlv_repo: Path, tmp_path: Path) -> None:
    """mlv.yaml -> ~/.config/gh/hosts.yml: plots reads no mlv.yaml through a committed link
    out (as repro and dag do): its keys would be shown as the errors of a bad pipeline."""
    hosts = tmp_path / "gh" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text("github.com:\n  oauth_token: ghp_HOSTS\n")
    (mlv_repo / "mlv.yaml").symlink_to(hosts)
    commit_all(mlv_repo, "link")
    proc = mlv("plots", "show", cwd=mlv_repo, check=False)
    assert_error(
        proc, 1, "mlv.yaml: a symbolic link that git tracks leads out", "`git rm -f mlv.yaml`"
    )
    assert "ghp_HOSTS" not in proc.stdout + proc.stderr
    git("rm", "-q", "-f", "mlv.yaml", cwd=mlv_repo)
    assert "no plots to draw" in mlv("plots", "show", cwd=mlv_repo).stderr
