"""Plot the tutorial data's loss: the textbook run against the default fit.

Usage (matplotlib needed), from any folder::

    python docs/plot_convergence.py                      # a new temporary folder
    python docs/plot_convergence.py --output conv.png    # that file
    python docs/plot_convergence.py --output docs/convergence.png   # the README's figure

The data come from the installed package (``fastgd.datasets.load_bike_calories``). The
figure goes where ``--output`` says; without it, into a new temporary folder (printed),
so that running the script never replaces a file of the project, the README's
``docs/convergence.png`` included, unless that file is asked for by name.
"""
import argparse
import os
import tempfile

import numpy as np

import fastgd
from fastgd.datasets import load_bike_calories

#: the least-squares optimum's MSE on the tutorial data (a 40-digit solve)
BEST_MSE = 110.25738344912884


def draw(out):
    """Fit the tutorial data three ways and write the excess-MSE figure to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = load_bike_calories()
    textbook = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
    default = fastgd.fit(x, y)
    gd_scaled = fastgd.fit(x, y, optimizer="gd")
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    # (the two scaled fits can take the same steps: hollow squares under dots keep both seen)
    for res, label, style in [(textbook, "textbook: rate 1e-4, raw data", dict()),
                              (gd_scaled, "optimizer='gd', scaled",
                               dict(marker="s", ms=9, mfc="none", ls="--")),
                              (default, "default: scaled CG (gram path)", dict(marker="o", ms=5))]:
        excess = np.maximum(res.loss_history - BEST_MSE, 1e-16) / BEST_MSE
        n = res.n_epochs
        ax.semilogy(np.arange(len(excess)), excess, **style,
                    label=f"{label}: {n} iteration{'' if n == 1 else 's'}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("iteration")
    ax.set_ylabel("(MSE - optimum) / optimum")
    ax.set_title("bike_calories: the textbook run and the default fit")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", metavar="FILE.png",
                        help="where to write the figure (default: convergence.png in a new "
                             "temporary folder); an existing image there is replaced, any "
                             "other file is refused")
    args = parser.parse_args(argv)
    if args.output:
        from fastgd._outputs import check_outputs

        try:  # before the fits: a missing folder or someone else's file fails at once
            check_outputs([("--output", args.output, "image")], force_hint="remove it")
        except ValueError as exc:
            parser.error(str(exc))
    out = args.output or os.path.join(tempfile.mkdtemp(prefix="fastgd-convergence-"),
                                      "convergence.png")
    print(f"wrote {draw(out)}")


if __name__ == "__main__":
    main()
