"""Write data/raw/: a synthetic 3-class tabular dataset, as three CSV files.

Run once, before tracking the data with `mlv add data/raw`; it is not a pipeline stage.
Seeded, so every run writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240501
ROWS_PER_FILE = 1200
FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]
CLASSES = 3


def main() -> None:
    rng = np.random.default_rng(SEED)
    # One centre per class; the features are noisy, correlated and on different scales.
    centres = rng.normal(0.0, 1.6, size=(CLASSES, len(FEATURES)))
    mixing = np.eye(len(FEATURES)) + 0.3 * rng.normal(size=(len(FEATURES), len(FEATURES)))
    scales = np.array([1.0, 10.0, 0.1, 5.0, 1.0, 100.0])
    out = Path("data/raw")
    out.mkdir(parents=True, exist_ok=True)
    for part in range(3):
        labels = rng.integers(0, CLASSES, size=ROWS_PER_FILE)
        noise = rng.normal(size=(ROWS_PER_FILE, len(FEATURES)))
        x = (centres[labels] + noise) @ mixing * scales
        lines = [",".join([*FEATURES, "label"])]
        lines += [
            ",".join([*(f"{v:.5f}" for v in row), str(label)])
            for row, label in zip(x, labels, strict=True)
        ]
        (out / f"part-{part}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {3 * ROWS_PER_FILE} rows to {out}/")


if __name__ == "__main__":
    main()
