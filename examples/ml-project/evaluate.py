"""Stage `evaluate`: model.npy on data/prepared/test.npy -> metrics.json.

accuracy, loss (mean cross-entropy) and f1 (macro), rounded to 6 digits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def main() -> None:
    w = np.load("model.npy")
    test = np.load("data/prepared/test.npy")
    x, y = test[:, :-1], test[:, -1].astype(int)
    p = softmax(np.hstack([x, np.ones((len(x), 1))]) @ w)
    pred = p.argmax(axis=1)
    f1s = []
    for c in range(w.shape[1]):
        tp = np.sum((pred == c) & (y == c))
        precision = tp / max(np.sum(pred == c), 1)
        recall = tp / max(np.sum(y == c), 1)
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    metrics = {
        "accuracy": round(float(np.mean(pred == y)), 6),
        "loss": round(float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))), 6),
        "f1": round(float(np.mean(f1s)), 6),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print("evaluate:", json.dumps(metrics))


if __name__ == "__main__":
    main()
