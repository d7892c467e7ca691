"""Stage `train`: softmax regression by full-batch gradient descent -> model.npy.

model.npy is one float64 array of shape (features + 1, classes): the weights, then the
biases. np.save writes a fixed header and the raw bytes (no timestamps), and every step here
is deterministic, so the same data and params give the same file, bit for bit.
"""

from __future__ import annotations

import os

# One BLAS thread: the same sums, in the same order, on every run.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path

import numpy as np
import yaml


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())["train"]
    train = np.load("data/prepared/train.npy")
    x, y = train[:, :-1], train[:, -1].astype(int)
    classes = int(y.max()) + 1
    onehot = np.eye(classes)[y]
    xb = np.hstack([x, np.ones((len(x), 1))])  # a constant column for the bias
    w = np.zeros((xb.shape[1], classes))
    decay = np.ones_like(w)
    decay[-1] = 0.0  # no weight decay on the bias
    for epoch in range(1, params["epochs"] + 1):
        p = softmax(xb @ w)
        grad = xb.T @ (p - onehot) / len(xb) + params["l2"] * decay * w
        w -= params["lr"] * grad
        if epoch % 50 == 0 or epoch == params["epochs"]:
            loss = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))
            print(f"train: epoch {epoch:4d}  loss {loss:.4f}")
    np.save("model.npy", w)


if __name__ == "__main__":
    main()
