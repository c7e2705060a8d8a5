"""Plot the tutorial data's loss: the textbook run against the default fit.

Usage (matplotlib needed): ``python docs/plot_convergence.py [out.png]``; reads
``../shared/data/bike_calories.csv`` from the project root.
"""
import sys
from pathlib import Path

import numpy as np

import fastgd


def main(out="docs/convergence.png"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(__file__).resolve().parents[1]
    data = np.loadtxt(root.parent / "shared" / "data" / "bike_calories.csv", delimiter=",")
    x, y = data[:, 0], data[:, 1]
    best = 110.25738344912884  # the least-squares optimum's MSE (40-digit solve)
    textbook = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
    default = fastgd.fit(x, y)
    gd_scaled = fastgd.fit(x, y, optimizer="gd")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for res, label in [(textbook, "textbook: rate 1e-4, raw data"),
                       (gd_scaled, "optimizer='gd', scaled"),
                       (default, "default: scaled CG (gram path)")]:
        excess = np.maximum(res.loss_history - best, 1e-16) / best
        ax.semilogy(np.arange(len(excess)), excess, marker="o" if len(excess) < 20 else None,
                    label=f"{label}: {res.n_epochs} iterations")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("iteration")
    ax.set_ylabel("(MSE - optimum) / optimum")
    ax.set_title("bike_calories.csv: the textbook run and the default fit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
