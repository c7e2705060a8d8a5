"""Pictures of a fit (``pip install "fastgd[plot]"``: matplotlib).

* :func:`fit_line`: the data (subsampled for millions of points) and the fitted line;
* :func:`loss_curve`: the loss per epoch, on a log scale;
* :func:`loss_surface`: for one feature, the MSE bowl over (slope, intercept) as contours,
  with the path gradient descent took drawn on it.

Each returns the matplotlib ``Axes`` it drew on (a new figure's unless ``ax`` is given).
"""
import numpy as np

try:
    import matplotlib  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError('fastgd.plot needs matplotlib, an optional extra: '
                      'pip install "fastgd[plot]"') from exc

#: points drawn at most: a uniform subsample beyond (a fixed seed, so plots repeat)
MAX_POINTS = 20_000


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(6, 4)).add_subplot()


def _one_feature(x, what):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{what} draws one feature: pass x as a 1-D array (got shape {x.shape})")
    return x


def _sample(n, max_points=MAX_POINTS):
    if n <= max_points:
        return slice(None)
    return np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))


def fit_line(result, x, y, *, ax=None, max_points=MAX_POINTS):
    """The data (at most ``max_points`` of them, a uniform subsample) and the fitted line
    ``y = coef[0] x + intercept``."""
    x = _one_feature(x, "fit_line")
    y = np.asarray(y, dtype=np.float64)
    ax = _axes(ax)
    idx = _sample(x.shape[0], max_points)
    ax.scatter(x[idx], y[idx], s=4, alpha=0.4, color="tab:blue", linewidths=0,
               label=f"data ({x[idx].shape[0]:,} of {x.shape[0]:,} points)")
    lo, hi = float(np.min(x)), float(np.max(x))
    grid = np.linspace(lo, hi, 2)
    ax.plot(grid, result.coef[0] * grid + result.intercept, color="tab:red", lw=2,
            label=f"fit: y = {result.coef[0]:.4g} x {result.intercept:+.4g}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="best")
    return ax


def loss_curve(result, *, ax=None):
    """The loss before the first epoch and after each one (log scale)."""
    ax = _axes(ax)
    hist = np.asarray(result.loss_history, dtype=np.float64)
    ax.semilogy(np.arange(hist.shape[0]), np.maximum(hist, np.finfo(float).tiny), marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({result.reduction})")
    ax.set_title(f"{result.mode}: {result.n_epochs} epoch(s), "
                 f"{'converged' if result.converged else 'not converged'}")
    return ax


def descent_path(x, y, result):
    """The (slope, intercept) after each epoch of ``result``'s fit, by running it again
    (the plan's settings, so the same path bit for bit) and recording it."""
    x = _one_feature(x, "descent_path")
    from ._api import fit

    path = [(0.0, 0.0)]
    # (keywords: the settings with the seed a random_state=None fit drew, so that a
    # stochastic fit's path is the one it took)
    settings = result.plan.keywords() if result.plan is not None else {}

    def record(epoch, coef, intercept, loss):
        path.append((float(coef[0]), float(intercept)))

    fit(x, y, callback=record, progress=False, **settings)
    return np.array(path)


def loss_surface(x, y, result, *, path=None, ax=None, max_points=200_000, levels=30):
    """The mean squared error over (slope, intercept) as contours around the fit, with the
    gradient-descent path on it (``path``: an ``(epochs + 1, 2)`` array; by default
    :func:`descent_path` records it). The bowl is evaluated on at most ``max_points``
    points (a uniform subsample) from their sufficient statistics."""
    x = _one_feature(x, "loss_surface")
    y = np.asarray(y, dtype=np.float64)
    ax = _axes(ax)
    if path is None:
        path = descent_path(x, y, result)
    path = np.asarray(path, dtype=np.float64)
    idx = _sample(x.shape[0], max_points)
    xs, ys = x[idx], y[idx]
    # MSE(m, c) = mean((y - m x - c)^2), expanded in the sample's moments
    sxx, sx, sy, sxy, syy = (np.mean(xs * xs), np.mean(xs), np.mean(ys), np.mean(xs * ys),
                             np.mean(ys * ys))
    m0, c0 = float(result.coef[0]), float(result.intercept)
    span_m = max(np.ptp(np.r_[path[:, 0], m0]), abs(m0), 1e-12) * 1.3
    span_c = max(np.ptp(np.r_[path[:, 1], c0]), abs(c0), 1e-12) * 1.3
    M, C = np.meshgrid(np.linspace(m0 - span_m, m0 + span_m, 160),
                       np.linspace(c0 - span_c, c0 + span_c, 160))
    Z = syy - 2 * M * sxy - 2 * C * sy + M * M * sxx + 2 * M * C * sx + C * C
    cs = ax.contour(M, C, Z, levels=np.geomspace(max(Z.min(), 1e-300), Z.max(), levels)
                    if Z.min() > 0 else levels, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, fontsize=6, fmt="%.3g")
    ax.plot(path[:, 0], path[:, 1], color="tab:red", marker=".", ms=3, lw=1,
            label=f"descent path ({path.shape[0] - 1} epochs)")
    ax.plot([m0], [c0], marker="*", color="black", ms=10, label="fit")
    ax.set_xlabel("slope m")
    ax.set_ylabel("intercept c")
    ax.legend(loc="best")
    return ax


def summary(result, x, y, path=None, file=None):
    """One figure with the three pictures (for one feature; else the loss curve and the
    predictions against the targets), written to ``file`` when given; returns it."""
    import matplotlib.pyplot as plt

    x = np.asarray(x, dtype=np.float64)
    one = x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1)
    fig, axes = plt.subplots(1, 3 if one else 2, figsize=(16 if one else 11, 4.5))
    if one:
        fit_line(result, x, y, ax=axes[0])
        loss_curve(result, ax=axes[1])
        loss_surface(x, y, result, path=path, ax=axes[2])
    else:
        loss_curve(result, ax=axes[0])
        idx = _sample(x.shape[0])
        # the columns as given, by position (a frame's names were checked by the caller)
        pred = x[idx].reshape(-1, result.coef.shape[0]) @ result.coef + result.intercept
        axes[1].scatter(np.asarray(y)[idx], pred, s=4, alpha=0.4, linewidths=0)
        lo, hi = float(np.min(pred)), float(np.max(pred))
        axes[1].plot([lo, hi], [lo, hi], color="tab:red")
        axes[1].set_xlabel("y")
        axes[1].set_ylabel("prediction")
    fig.tight_layout()
    if file is not None:
        fig.savefig(file, dpi=110)
    return fig
