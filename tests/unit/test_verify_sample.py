"""mlv.core.verify.choose_sample: the sample never passes its byte budget, comes close to
it when objects are small, is the same for the same seed, and varies with the seed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.core.verify import choose_sample

sizes_st = st.dictionaries(
    st.text("0123456789abcdef", min_size=4, max_size=4), st.integers(0, 10**9), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(sizes_st, st.floats(0, 2 * 10**10), st.integers(0, 2**31 - 1))
def test_sample_never_passes_the_budget(sizes: dict[str, int], budget: float, seed: int) -> None:
    picked = choose_sample(sizes, budget, seed)
    assert picked == sorted(set(picked)) and set(picked) <= set(sizes)
    taken = sum(sizes[h] for h in picked)
    assert taken <= budget
    # every object left out would not have fitted in what was left
    assert all(taken + sizes[h] > budget for h in sizes if h not in picked)
    assert choose_sample(sizes, budget, seed) == picked


def test_small_objects_fill_the_budget_to_within_one_object() -> None:
    sizes = {f"{i:04x}": 1000 + i for i in range(5000)}
    budget = sum(sizes.values()) / 100
    for seed in range(5):
        taken = sum(sizes[h] for h in choose_sample(sizes, budget, seed))
        assert budget - 6000 < taken <= budget


def test_objects_larger_than_the_budget_are_never_drawn_and_seeds_differ() -> None:
    sizes = {"big": 10**9} | {f"s{i}": 10 for i in range(100)}
    samples = {tuple(choose_sample(sizes, 200, seed)) for seed in range(10)}
    assert all("big" not in s and len(s) == 20 for s in samples)
    assert len(samples) > 1
