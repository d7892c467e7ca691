"""Stage `prepare`: data/raw/*.csv -> data/prepared/{train,test}.npy.

Shuffles the rows (prepare.seed), holds out a fraction for testing (prepare.split) and
standardises the features with the training rows' mean and deviation. Each array holds the
features then the label, as float64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
    parts = sorted(Path("data/raw").glob("*.csv"))
    data = np.concatenate([np.loadtxt(p, delimiter=",", skiprows=1, ndmin=2) for p in parts])
    rng = np.random.default_rng(params["seed"])
    data = data[rng.permutation(len(data))]
    n_test = round(len(data) * params["split"])
    test, train = data[:n_test], data[n_test:]
    mean = train[:, :-1].mean(axis=0)
    std = train[:, :-1].std(axis=0)
    for rows in (train, test):
        rows[:, :-1] = (rows[:, :-1] - mean) / std
    out = Path("data/prepared")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "train.npy", train)
    np.save(out / "test.npy", test)
    print(f"prepare: {len(train)} training rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
