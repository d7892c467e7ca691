"""The page `mlv plots show | diff` writes: one self-contained HTML file of inline SVG.

No script and nothing fetched: the page works offline, from any folder, in any browser, and
its Content-Security-Policy forbids every script, so that nothing a revision's files hold (a
metric named `<script>`) can run even if escaping were missed. The one <style> element is
allowed by its hash; images are the copies in static/ beside the page (an SVG shown by <img>
runs no script either). docs/decisions.md ("Plots: inline SVG, no JavaScript") says why this
and not Vega-Lite, Plotly or matplotlib.

Rendering lives in the CLI (architecture.md: core returns plain data, the CLI renders it);
every string from the data goes through _esc.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Sequence
from typing import Any

from mlv.cli.metrics import rev_label
from mlv.core.pipeline import plots as plots_mod
from mlv.core.pipeline.plots import Plot, Result, Series

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 16, 56
MAX_DRAWN = 5000  # points per series drawn (every k-th beyond; --json has them all)
MAX_CLASSES = 60  # classes of a confusion matrix drawn
MAX_BARS = 200  # categories of a bar plot drawn
# Tableau 10, the palette Vega-Lite (DVC's renderer) uses: the same colours a DVC user knows.
COLORS = (
    "#4c78a8",
    "#f58518",
    "#e45756",
    "#72b7b2",
    "#54a24b",
    "#eeca3b",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 8px; overflow-wrap: anywhere; }
.meta, .note { color: #666; font-size: 12px; overflow-wrap: anywhere; }
.plot { display: inline-block; vertical-align: top; margin: 0 24px 32px 0; max-width: 760px; }
.legend { list-style: none; padding: 0; margin: 4px 0; font-size: 12px; }
.legend li { display: inline-block; margin-right: 16px; overflow-wrap: anywhere; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
svg .title { font-size: 12px; fill: #222; }
svg text.light { fill: #fff; }
.grid { stroke: #e6e6e6; }
.axis { stroke: #888; }
figure { display: inline-block; margin: 0 16px 16px 0; }
figure img { max-width: 720px; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #444; overflow-wrap: anywhere; }
.errors { color: #a00; font-size: 12px; }
"""


def _esc(value: Any) -> str:
    """Text safe in HTML content and in double-quoted attributes (quotes too)."""
    return html.escape(str(value), quote=True)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self' file: data:; "
        "script-src 'none'; base-uri 'none'; form-action 'none'"
    )


def page(result: Result) -> str:
    """The whole page for result."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(_csp())}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mlv plots</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>mlv plots</h1>",
        '<p class="meta">Revisions: ' + ", ".join(_esc(_rev_text(r)) for r in result.revs) + "</p>",
    ]
    for i, plot in enumerate(result.plots):
        parts.append(_section(i, plot))
    if result.errors:
        parts.append('<ul class="errors">')
        for e in result.errors:
            parts.append(f"<li>{_esc(rev_label(e.rev))}: {_esc(e.why)}</li>")
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _rev_text(rev: Any) -> str:
    label = rev_label(rev)
    if rev.commit and label != rev.commit[:7]:
        return f"{label} ({rev.commit[:7]})"
    return str(label)


def _section(index: int, plot: Plot) -> str:
    out = [f'<section class="plot" id="plot-{index}" data-plot-id="{_esc(plot.id)}">']
    out.append(f"<h2>{_esc(plot.title or plot.id)}</h2>")
    if plot.title:
        out.append(f'<p class="meta">{_esc(plot.id)}</p>')
    if plot.series:
        labels = series_labels(plot.series)
        if plot.template in plots_mod.CATEGORICAL:
            for s, label in zip(plot.series, labels, strict=True):
                out.append(_confusion(plot, s, label))
        else:
            if plot.template in plots_mod.BARS:
                out.append(_bars(plot, plot.series))
            else:
                out.append(_xy(plot, plot.series, plot.template == "scatter"))
            out.append(_legend(labels))
        out += _notes(plot.series, labels)
    if not plot.series and not plot.images:
        out.append('<p class="note">No data at these revisions.</p>')
    for image in plot.images:
        caption = _esc(f"{rev_label(image.rev)}: {image.file}")
        if image.saved is None:
            out.append(f'<p class="note">{caption} (not copied)</p>')
            continue
        out.append(
            f'<figure><img src="static/{_esc(image.saved)}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    out.append("</section>")
    return "\n".join(out)


def series_labels(series: Sequence[Series]) -> list[str]:
    """Each series named by what tells it apart (revision, file, field), as DVC's legend
    (`workspace::loss`); one series: its field."""
    if len(series) == 1:
        return [series[0].y]
    parts = [(rev_label(s.rev), s.file, s.y) for s in series]
    varies = [len({p[i] for p in parts}) > 1 for i in range(3)]
    if not any(varies):
        varies[2] = True
    return ["::".join(p[i] for i in range(3) if varies[i]) for p in parts]


def _legend(labels: Sequence[str]) -> str:
    items = [
        f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" '
        f'fill="{COLORS[i % len(COLORS)]}"/></svg> {_esc(label)}</li>'
        for i, label in enumerate(labels)
    ]
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _notes(series: Sequence[Series], labels: Sequence[str]) -> list[str]:
    notes = []
    for s, label in zip(series, labels, strict=True):
        if s.skipped:
            notes.append(f"{label}: {s.skipped:,} rows without a value to draw, skipped")
        if len(s.points) > MAX_DRAWN:
            notes.append(f"{label}: {MAX_DRAWN:,} of {len(s.points):,} points drawn")
    return [f'<p class="note">{_esc(n)}</p>' for n in notes]


# ---- axes ------------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 times a power of ten apart); the ends
    alone where floats run out (a span beyond 1.8e308, steps below the smallest float)."""
    ends = sorted({float(lo), float(hi)})
    lo, hi = ends[0], ends[-1]
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    if not (math.isfinite(raw) and raw > 0):
        return ends
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), 0.0)
    if not (math.isfinite(step) and step > 0 and math.isfinite(lo / step)):
        return ends
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    v = start
    while len(ticks) < 49 and math.isfinite(v):
        ticks.append(round(v, 12))
        if v >= hi:
            break
        v += step
    if not ticks or ticks[-1] < hi:  # floats ran out on the way
        ticks.append(hi)
    return ticks


def _fraction(v: float, a: float, b: float) -> float:
    """Where v lies between a and b (0 to 1), in halves so that no difference overflows."""
    span = b * 0.5 - a * 0.5
    if not span:
        return 0.5
    f = (float(v) * 0.5 - a * 0.5) / span
    return f if math.isfinite(f) else 0.5


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e6 or abs(v) < 1e-3:
        return f"{v:.3g}"
    return f"{v:.6g}"


def _frame(x_ticks: list[float], y_ticks: list[float], sx: Any, sy: Any) -> list[str]:
    out = []
    for t in y_ticks:
        y = sy(t)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(_fmt(t))}</text>')
    for t in x_ticks:
        x = sx(t)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{_bottom()}"/>')
        out.append(
            f'<text x="{x:.1f}" y="{_bottom() + 16}" text-anchor="middle">{_esc(_fmt(t))}</text>'
        )
    out.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_bottom()}" y2="{_bottom()}"/>'
    )
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{_bottom()}"/>')
    return out


def _bottom() -> int:
    return HEIGHT - BOTTOM


def _axis_labels(x_label: str, y_label: str) -> list[str]:
    mid_x = (LEFT + WIDTH - RIGHT) / 2
    mid_y = (TOP + _bottom()) / 2
    return [
        f'<text class="title" x="{mid_x:.0f}" y="{HEIGHT - 12}" text-anchor="middle">'
        f"{_esc(x_label)}</text>",
        f'<text class="title" transform="translate(16 {mid_y:.0f}) rotate(-90)" '
        f'text-anchor="middle">{_esc(y_label)}</text>',
    ]


def _svg(plot: Plot, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_esc(plot.title or plot.id)}">'
        + "".join(body)
        + "</svg>"
    )


def _drawn(points: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if len(points) <= MAX_DRAWN:
        return points
    step = math.ceil(len(points) / MAX_DRAWN)
    kept = points[::step]
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def _default_label(values: set[str], fallback: str) -> str:
    return next(iter(values)) if len(values) == 1 else fallback


# ---- linear and scatter ------------------------------------------------------------------


def _xy(plot: Plot, series: Sequence[Series], scatter: bool) -> str:
    pts = [p for s in series for p in s.points]
    if not pts:
        return '<p class="note">No points to draw.</p>'
    xs = [float(p[0]) for p in pts]
    ys = [float(p[1]) for p in pts]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(min(ys), max(ys))
    x0, x1 = min(x_ticks[0], min(xs)), max(x_ticks[-1], max(xs))
    y0, y1 = min(y_ticks[0], min(ys)), max(y_ticks[-1], max(ys))
    width, height = WIDTH - LEFT - RIGHT, _bottom() - TOP

    def sx(v: float) -> float:
        return LEFT + _fraction(v, x0, x1) * width

    def sy(v: float) -> float:
        return _bottom() - _fraction(v, y0, y1) * height

    body = _frame(x_ticks, y_ticks, sx, sy)
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        drawn = _drawn(s.points)
        attrs = (
            f'class="series" data-rev="{_esc(rev_label(s.rev))}" data-file="{_esc(s.file)}" '
            f'data-field="{_esc(s.y)}" data-points="{len(s.points)}"'
        )
        if scatter:
            dots = "".join(
                f'<circle cx="{sx(float(x)):.2f}" cy="{sy(float(y)):.2f}" r="3"/>' for x, y in drawn
            )
            body.append(f'<g {attrs} fill="{color}" fill-opacity="0.8">{dots}</g>')
        else:
            ordered = sorted(drawn, key=lambda p: float(p[0]))  # Vega-Lite's line: by x
            coords = " ".join(f"{sx(float(x)):.2f},{sy(float(y)):.2f}" for x, y in ordered)
            body.append(
                f'<polyline {attrs} fill="none" stroke="{color}" stroke-width="2" '
                f'stroke-linejoin="round" points="{coords}"/>'
            )
    x_label = plot.x_label or _default_label({s.x for s in series}, "x")
    y_label = plot.y_label or _default_label({s.y for s in series}, "y")  # DVC's
    return _svg(plot, body + _axis_labels(x_label, y_label))


# ---- bars --------------------------------------------------------------------------------


def _bars(plot: Plot, series: Sequence[Series]) -> str:
    categories: dict[str, float] = {}
    for s in series:
        for value, label in s.points:
            categories.setdefault(label, float(value))
    names = list(categories)
    if plot.template == "bar_horizontal_sorted":
        names.sort(key=lambda n: -categories[n])
    names = names[:MAX_BARS]
    if not names:
        return '<p class="note">No bars to draw.</p>'
    values = [float(v) for s in series for v, label in s.points if label in categories]
    lo, hi = min(0.0, *values), max(0.0, *values)
    ticks = nice_ticks(lo, hi)
    x0, x1 = min(ticks[0], lo), max(ticks[-1], hi)
    band = 24 if len(series) == 1 else 12 * len(series) + 8
    height = TOP + band * len(names) + BOTTOM
    left = 160
    width = WIDTH - left - RIGHT

    def sx(v: float) -> float:
        return left + _fraction(v, x0, x1) * width

    body = []
    bottom = TOP + band * len(names)
    for t in ticks:
        x = sx(t)
        body.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{bottom}"/>')
        body.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_esc(_fmt(t))}</text>'
        )
    row = {n: i for i, n in enumerate(names)}
    bar_h = (band - 8) / len(series)
    for n, i in row.items():
        y = TOP + i * band + band / 2 + 4
        body.append(f'<text x="{left - 6}" y="{y:.1f}" text-anchor="end">{_esc(n[:40])}</text>')
    for k, s in enumerate(series):
        color = COLORS[k % len(COLORS)]
        rects = []
        for value, label in s.points:
            if label not in row:
                continue
            a, b = sorted((sx(0.0), sx(float(value))))
            y = TOP + row[label] * band + 4 + k * bar_h
            rects.append(
                f'<rect x="{a:.2f}" y="{y:.2f}" width="{b - a:.2f}" height="{bar_h:.2f}" '
                f'data-category="{_esc(label)}" data-value="{_esc(value)}"/>'
            )
        body.append(
            f'<g class="series" data-rev="{_esc(rev_label(s.rev))}" data-file="{_esc(s.file)}" '
            f'data-field="{_esc(s.y)}" fill="{color}">{"".join(rects)}</g>'
        )
    body.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{TOP}" y2="{bottom}"/>')
    x_label = plot.x_label or _default_label({s.x for s in series}, "value")
    mid = (left + WIDTH - RIGHT) / 2
    body.append(
        f'<text class="title" x="{mid:.0f}" y="{height - 12}" text-anchor="middle">'
        f"{_esc(x_label)}</text>"
    )
    return _svg(plot, body, height)


# ---- confusion matrices ------------------------------------------------------------------


def _class_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _confusion(plot: Plot, s: Series, label: str) -> str:
    counts: dict[tuple[str, str], int] = {}
    for actual, predicted in s.points:
        counts[(actual, predicted)] = counts.get((actual, predicted), 0) + 1
    classes = sorted({c for pair in counts for c in pair}, key=_class_key)
    shown = classes[:MAX_CLASSES]
    normalized = plot.template == "confusion_normalized"
    totals = {a: sum(v for (aa, _), v in counts.items() if aa == a) for a in shown}
    cell = max(18, min(48, 480 // max(len(shown), 1)))
    left, top = 120, 40
    size = cell * len(shown)
    width, height = max(WIDTH, left + size + RIGHT), top + size + 56
    peak = max(
        (
            (v / totals[a] if normalized and totals[a] else v)
            for (a, _), v in counts.items()
            if a in totals
        ),
        default=1,
    )
    body = [
        f'<g class="series confusion" data-rev="{_esc(rev_label(s.rev))}" '
        f'data-file="{_esc(s.file)}" data-field="{_esc(s.y)}">'
    ]
    for i, a in enumerate(shown):
        for j, p in enumerate(shown):
            n = counts.get((a, p), 0)
            value = n / totals[a] if normalized and totals[a] else n
            text = f"{value:.2f}" if normalized else str(n)
            shade = value / peak if peak else 0
            x, y = left + j * cell, top + i * cell
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{COLORS[0]}" '
                f'fill-opacity="{0.05 + 0.95 * shade:.3f}" stroke="#fff" '
                f'data-actual="{_esc(a)}" data-predicted="{_esc(p)}" data-count="{n}"/>'
            )
            light = ' class="light"' if shade > 0.5 else ""
            body.append(
                f'<text{light} x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                f'text-anchor="middle">{text}</text>'
            )
    body.append("</g>")
    for i, a in enumerate(shown):
        row_y = top + i * cell + cell / 2 + 4
        body.append(f'<text x="{left - 6}" y="{row_y:.1f}" text-anchor="end">{_esc(a[:20])}</text>')
        col_x = left + i * cell + cell / 2
        body.append(
            f'<text x="{col_x:.1f}" y="{top - 6}" text-anchor="middle">{_esc(a[:8])}</text>'
        )
    x_name = plot.x_label or s.x
    y_name = plot.y_label or s.y
    body.append(
        f'<text class="title" x="{left + size / 2:.0f}" y="{top + size + 20}" '
        f'text-anchor="middle">columns: {_esc(y_name)}; rows: {_esc(x_name)}</text>'
    )
    extra = len(classes) - len(shown)
    caption = f"{label}" + (f" ({extra} more classes not drawn)" if extra > 0 else "")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(caption)}">'
        f'<text class="title" x="{left}" y="16">{_esc(caption)}</text>' + "".join(body) + "</svg>"
    )
