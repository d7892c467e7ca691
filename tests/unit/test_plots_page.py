"""The plots page renderer on any data a revision could hold: it never fails, and nothing
from the data becomes markup."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.cli import plots_page
from mlv.core.pipeline import plots as plots_mod
from mlv.core.pipeline.plots import Image, Plot, Problem, Result, Series
from mlv.core.pipeline.revs import Rev

TEXT = st.text(alphabet=st.sampled_from("<>&\"'=/ ab\u00e9\u202e\U0001f600"), max_size=12)
NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0.0, 1e-300, -1e308, 1e308, 5e-324]),
)
REVS = st.sampled_from([Rev("workspace", None), Rev("<b>HEAD", "a" * 40), Rev("v1", "b" * 40)])


@st.composite
def plots(draw: st.DrawFn) -> Plot:
    template = draw(st.sampled_from(plots_mod.TEMPLATES))
    kind = plots_mod.shape(template)
    series = []
    for _ in range(draw(st.integers(0, 3))):
        if kind == "xy":
            point = st.tuples(NUMBER, NUMBER)
        elif kind == "bars":
            point = st.tuples(NUMBER, TEXT)
        else:
            point = st.tuples(TEXT, TEXT)
        series.append(
            Series(
                draw(REVS),
                draw(TEXT),
                draw(TEXT),
                draw(TEXT),
                draw(st.lists(point, max_size=8)),
                draw(st.integers(0, 3)),
                template,
            )
        )
    images = [Image(draw(REVS), draw(TEXT), draw(st.one_of(st.none(), TEXT)))]
    title = draw(st.one_of(st.none(), TEXT))
    return Plot(draw(TEXT), template, title, draw(TEXT), None, series, images)


@settings(max_examples=300, deadline=None)
@given(st.lists(plots(), max_size=3), st.lists(TEXT, max_size=2))
def test_any_data_renders_and_stays_text(found: list[Plot], whys: list[str]) -> None:
    rev = Rev("workspace", None)
    result = Result([rev], found, [Problem(rev, "f", why) for why in whys])
    page = plots_page.page(result)
    # every tag in the page is one the renderer writes: nothing from the data is markup
    tags = set(re.findall(r"<([a-zA-Z!/][a-zA-Z0-9]*)", page))
    assert tags <= {
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "section",
        "svg", "g", "line", "text", "polyline", "circle", "rect", "ul", "li", "figure", "img",
        "figcaption", "/html", "/head", "/title", "/style", "/body", "/h1", "/h2", "/p",
        "/section", "/svg", "/g", "/text", "/ul", "/li", "/figure", "/figcaption",
    }  # fmt: skip
    # attribute values never hold a bare quote or angle bracket from the data
    for value in re.findall(r'="([^"]*)"', page):
        assert "<" not in value and ">" not in value
    for coords in re.findall(r'(?:points|cx|cy|x|y|width|height)="([^"]*)"', page):
        assert "nan" not in coords and "inf" not in coords


@given(NUMBER, NUMBER)
def test_ticks_cover_the_range(a: float, b: float) -> None:
    lo, hi = sorted((float(a), float(b)))
    ticks = plots_page.nice_ticks(lo, hi)
    assert ticks == sorted(ticks)
    assert all(math.isfinite(t) for t in ticks)
    assert len(ticks) <= 50
    if math.isfinite(hi - lo) and hi - lo > 1e-9 * max(abs(lo), abs(hi)):
        assert ticks[0] <= lo + abs(lo) * 1e-9 and ticks[-1] >= hi - abs(hi) * 1e-9
