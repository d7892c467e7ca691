"""mlv.lock rendering: the per-stage renderer writes what one dump of the whole file would."""

from __future__ import annotations

import random
import string

import pytest

from mlv import yamlio
from mlv.core.pipeline import lockfile
from mlv.core.pipeline.lockfile import Lock, LockedStage, Recorded

HASH = "xxh128:" + "0123456789abcdef" * 2


def _text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + "  -:'\"#é\n\t\\{}[]"
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))) for _ in range(30)]
    return rng.choice([" ", "\n", " \n "]).join(words[: rng.randint(1, 30)])


def _stage(rng: random.Random) -> LockedStage:
    deps = tuple(
        Recorded(f"data/{_text(rng)[:20]}", HASH, rng.randint(0, 10**12), rng.choice([None, 3]))
        for _ in range(rng.randint(0, 3))
    )
    value = rng.choice([1, 0.5, None, True, "x y", [1, "a"], {"k": _text(rng)[:50]}])
    params = {"params.yaml": {"train.lr": value, "note": _text(rng)[:90]}}
    outs = (Recorded("model.bin", HASH, 12, None),)
    return LockedStage(_text(rng), deps, params, outs, ())


@pytest.mark.parametrize("seed", range(10))
def test_renderer_equals_one_dump_of_the_whole_file(seed: int) -> None:
    rng = random.Random(seed)
    renderer = lockfile.Renderer()
    lock = Lock({})
    for _ in range(30):
        lock.stages[f"s{rng.randint(0, 6)} {rng.choice(['', 'x:y', 'é'])}"] = _stage(rng)
        whole = yamlio.dumps(
            {
                "version": lockfile.LOCK_VERSION,
                "stages": {n: s.to_dict() for n, s in lock.stages.items()},
            }
        )
        assert renderer.render(lock) == whole
        assert lockfile.parse(whole).stages == lock.stages


def test_empty_lock_renders_and_parses() -> None:
    text = lockfile.dumps(Lock({}))
    assert lockfile.parse(text).stages == {}
