"""Pictures of a fit (``pip install "fastgd[plot]"``: matplotlib).

* :func:`fit_line`: the data (subsampled for millions of points) and the fitted line;
* :func:`loss_curve`: the loss per epoch;
* :func:`loss_surface`: for one feature, the MSE bowl over (slope, intercept) as contours,
  with the path gradient descent took, its start, the fit and the least-squares optimum;
* :func:`predictions`: for any number of features, the predictions against the targets;
* :func:`summary`: the pictures of a fit in one figure (the CLI's ``--plot``).

Each drawing function returns the matplotlib ``Axes`` it drew on (a new figure's unless
``ax`` is given). The pictures are meant to be published as they are: every axes has a
title and labelled axes, epochs are whole numbers, legends sit to the right of the axes,
outside the data, and every marked point (start, fit, optimum) lies inside the frame.
Figures made here use matplotlib's constrained layout, which makes room for the legend;
an ``ax`` of your own needs the same (``layout="constrained"``, or
``savefig(..., bbox_inches="tight")``), else the legend may be cut off.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import fastgd
>>> from fastgd import plot
>>> from fastgd.datasets import load_bike_calories
>>> x, y = load_bike_calories()
>>> res = fastgd.fit(x, y, learning_rate=1e-4, epochs=1000)
>>> ax = plot.loss_surface(x, y, res)
>>> ax.get_title()
'mean squared error over (slope, intercept)'
>>> fig = plot.summary(res, x, y)   # fig.savefig("fit.png")
>>> len(fig.axes)
3
"""
import io

import numpy as np

from ._outputs import check_outputs, image_format, write_bytes

try:
    import matplotlib  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError('fastgd.plot needs matplotlib, an optional extra: '
                      'pip install "fastgd[plot]"') from exc

#: points drawn at most: a uniform subsample beyond (a fixed seed, so plots repeat)
MAX_POINTS = 20_000
#: contour labels of :func:`loss_surface` at most, and their least distance (inches,
#: along the line they sit on): 7-point labels are 0.1 in tall, so they never touch
MAX_LABELS = 8
LABEL_GAP_IN = 0.25


def _axes(ax, size=(7.5, 4.2)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    # constrained layout: the legend to the right of the axes gets its room
    return plt.figure(figsize=size, layout="constrained").add_subplot()


def _root_figure(ax):
    """The figure that draws ``ax`` (a subfigure's parent figure)."""
    fig = ax.figure
    while getattr(fig, "figure", fig) is not fig:
        fig = fig.figure
    return fig


def _legend_outside(ax):
    """The legend to the right of the axes, top-aligned: never on the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")


def _plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _one_feature(x, what):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{what} draws one feature: pass x as a 1-D array (got shape {x.shape})")
    return x


def _feature_label(result, default="x"):
    names = getattr(result, "feature_names", None)
    return str(names[0]) if names else default


def _sample(n, max_points=MAX_POINTS):
    if n <= max_points:
        return slice(None)
    return np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))


def fit_line(result, x, y, *, ax=None, max_points=MAX_POINTS):
    """The data (at most ``max_points`` of them, a uniform subsample) and the fitted line
    ``y = coef[0] x + intercept``.

    Parameters
    ----------
    result : FitResult
        A fit on one feature.
    x, y : array-like of shape (n,)
        The data (``x`` may also be ``(n, 1)``).
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure's.
    max_points : int, default 20,000
        Points drawn at most (a seeded uniform subsample beyond).

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    x = _one_feature(x, "fit_line")
    y = np.asarray(y, dtype=np.float64)
    ax = _axes(ax)
    idx = _sample(x.shape[0], max_points)
    few = x.shape[0] <= 1000  # (larger dots for a few points)
    ax.scatter(x[idx], y[idx], s=8 if few else 4, alpha=0.6 if few else 0.4, color="tab:blue",
               linewidths=0,
               label=f"data ({x[idx].shape[0]:,} of {x.shape[0]:,} points)")
    lo, hi = float(np.min(x)), float(np.max(x))
    grid = np.linspace(lo, hi, 2)
    ax.plot(grid, result.coef[0] * grid + result.intercept, color="tab:red", lw=2,
            label=f"fit: y = {result.coef[0]:.4g} x {'-' if result.intercept < 0 else '+'} "
                  f"{abs(result.intercept):.4g}")
    ax.set_xlabel(_feature_label(result))
    ax.set_ylabel("y")
    ax.set_title("data and fitted line")
    _legend_outside(ax)
    return ax


def loss_curve(result, *, ax=None):
    """The loss before the first epoch and after each one.

    The epoch axis has whole-number ticks. The loss axis is logarithmic when the loss
    spans a factor of 10 or more (and is positive), linear otherwise (a log axis over
    less than a decade has no labelled decade and reads badly).

    Parameters
    ----------
    result : FitResult
        A fit (any mode and number of features); its ``loss_history`` is drawn.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure's.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    hist = np.asarray(result.loss_history, dtype=np.float64)
    ax.plot(np.arange(hist.shape[0]), hist, marker="." if hist.shape[0] <= 200 else None,
            color="tab:blue")
    finite = hist[np.isfinite(hist)]
    if finite.size and finite.min() > 0 and finite.max() >= 10 * finite.min():
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({result.reduction} over rows)")
    ax.set_title(f"loss per epoch: {result.mode}, {_plural(result.n_epochs, 'epoch')}, "
                 f"{'converged' if result.converged else 'not converged'}")
    return ax


def descent_path(x, y, result):
    """The (slope, intercept) before the first epoch and after each one of ``result``'s
    fit, by running it again (the plan's settings, so the same path bit for bit) and
    recording it.

    The plan records every setting but not the starting point nor the weights: a fit
    started from ``init_coef``/``init_intercept`` or fitted with ``sample_weight`` ends
    elsewhere when run again, and is a ``ValueError`` here (record its path with a
    ``callback`` instead and pass it to :func:`loss_surface` as ``path``).

    Parameters
    ----------
    x : array-like of shape (n,) or (n, 1)
        The feature the fit was made on.
    y : array-like of shape (n,)
        The targets the fit was made on.
    result : FitResult
        A fit of ``y`` on ``x`` from zero, unweighted, with its plan (a loaded model
        without a plan is run again with the default settings). A replay that does not
        end where ``result`` ended (other data) is a ``ValueError``.

    Returns
    -------
    ndarray of shape (n_epochs + 1, 2)
        The (slope, intercept) at the start, ``(0, 0)``, then after each epoch.
    """
    x = _one_feature(x, "descent_path")
    import fastgd

    path = [(0.0, 0.0)]
    # (keywords: the settings with the seed a random_state=None fit drew, so that a
    # stochastic fit's path is the one it took)
    settings = result.plan.keywords() if result.plan is not None else {}

    def record(epoch, coef, intercept, loss):
        path.append((float(coef[0]), float(intercept)))

    fastgd.fit(x, y, callback=record, progress=False, **settings)
    path = np.array(path)
    end = np.array([result.coef[0], result.intercept], dtype=np.float64)
    # the replay ends where the fit ended to rounding (a converged fit's refinement moves
    # it by about 1e-14 relative; a kernel loaded from the cache can differ in last bits)
    if not np.allclose(path[-1], end, rtol=1e-7, atol=1e-9 * max(1.0, float(np.max(np.abs(end))))):
        raise ValueError(
            f"descent_path: running the fit's plan again on this x and y ends at slope "
            f"{path[-1, 0]:.8g}, intercept {path[-1, 1]:.8g}, not at the result's slope "
            f"{end[0]:.8g}, intercept {end[1]:.8g}: the data differ from the fit's, or the fit "
            "started from init_coef/init_intercept or used sample_weight, which the plan does "
            "not record; record the path with fit(..., callback=...) and pass it as path=")
    return path


def _moments(x, y):
    """Means and centred second moments of a sample (two passes: no cancellation)."""
    mx, my = float(np.mean(x)), float(np.mean(y))
    dx, dy = x - mx, y - my
    return mx, my, float(np.mean(dx * dx)), float(np.mean(dx * dy)), float(np.mean(dy * dy))


def _level_text(value):
    """A contour label: three significant digits, positional between 0.01 and 1e5."""
    if value != 0 and not 1e-2 <= abs(value) < 1e5:
        return f"{value:.2e}"
    return np.format_float_positional(value, precision=3, unique=False, fractional=False,
                                      trim="-")


def _label_points(ax, frame, centre, curvature, excess_levels):
    """Where to put the contour labels: on one ray from the bowl's centre along an axis
    of its ellipses as drawn (there the contours cross the ray at right angles), the one
    of the four that carries the most labels; a level is labelled where the ray meets it,
    when that point is inside the frame (0.15 in from its edges) and at least
    ``LABEL_GAP_IN`` from the previous label. Distances are measured on the axes as laid
    out now. Returns the labelled levels' indices and their (slope, intercept)."""
    (m_lo, m_hi), (c_lo, c_hi) = frame
    box = ax.get_window_extent()  # pixels, as laid out
    dpi = _root_figure(ax).dpi
    w, h = box.width / dpi, box.height / dpi
    # the excess MSE, a quadratic form in (dm, dc), rewritten in inches on the axes
    scale = np.array([(m_hi - m_lo) / w, (c_hi - c_lo) / h])
    evals, evecs = np.linalg.eigh(curvature * np.outer(scale, scale))
    u0 = np.array([(centre[0] - m_lo) / scale[0], (centre[1] - c_lo) / scale[1]])
    margin = 0.15

    def room(direction):  # how far (inches) the ray runs inside the frame
        t = np.inf
        for k, size in ((0, w), (1, h)):
            if direction[k] > 0:
                t = min(t, (size - margin - u0[k]) / direction[k])
            elif direction[k] < 0:
                t = min(t, (u0[k] - margin) / -direction[k])
        return t

    best = ([], [])
    for lam, d in ((evals[0], evecs[:, 0]), (evals[1], evecs[:, 1])):
        if not lam > 0:
            continue
        for sign in (1.0, -1.0):
            reach, chosen, points, last = room(sign * d), [], [], 0.0
            for i, e in enumerate(excess_levels):
                s = np.sqrt(e / lam)  # inches from the centre to this level along the ray
                if s > reach or len(chosen) == MAX_LABELS:
                    break
                if s - last >= LABEL_GAP_IN:
                    u = (u0 + s * sign * d) * scale
                    chosen.append(i)
                    points.append((m_lo + u[0], c_lo + u[1]))
                    last = s
            if len(chosen) > len(best[0]):
                best = (chosen, points)
    return best


def loss_surface(x, y, result, *, path=None, ax=None, max_points=200_000, levels=30):
    """The mean squared error over (slope, intercept) as contours, with the path the fit
    took, its start, the fit and the least-squares optimum.

    The frame holds the whole path, its start, the fit and the optimum, with a margin.
    The contours are evenly spaced ellipses around the optimum (the excess over its MSE
    at ``(k / levels)**2`` of the largest excess in the frame) and, inside the first,
    up to 6 of half the size each, down to the one through the fit; a few are labelled
    with their MSE, on one line through the optimum, at least ``LABEL_GAP_IN`` apart
    (at most ``MAX_LABELS``): labels never overlap. The legend sits to the right of the
    axes.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        The data (one feature; ``x`` may be ``(n, 1)``).
    result : FitResult
        A fit on them.
    path : array-like of shape (k, 2), optional
        The (slope, intercept) per epoch, the start first; by default
        :func:`descent_path` records it by running the fit again.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure's.
    max_points : int, default 200,000
        The bowl (and the optimum drawn) come from the sufficient statistics of at most
        this many points (a seeded uniform subsample beyond).
    levels : int, default 30
        The number of contour lines.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    x = _one_feature(x, "loss_surface")
    y = np.asarray(y, dtype=np.float64)
    ax = _axes(ax)
    if path is None:
        path = descent_path(x, y, result)
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] < 1:
        raise ValueError(
            f"path must be a (k, 2) array of (slope, intercept), got shape {path.shape}")
    idx = _sample(x.shape[0], max_points)
    mx, my, vxx, vxy, vyy = _moments(x[idx], y[idx])
    m0, c0 = float(result.coef[0]), float(result.intercept)
    # MSE(m, c) = vyy - 2 m vxy + m^2 vxx + (my - m mx - c)^2; its minimum, when x varies
    optimum = (vxy / vxx, my - vxy / vxx * mx) if vxx > 0 else None
    best = vyy - vxy * vxy / vxx if vxx > 0 else None
    points = np.vstack([path, [[m0, c0]]] + ([[optimum]] if optimum else []))
    points = points[np.isfinite(points).all(axis=1)]
    frame = []
    for k, curv in ((0, vxx + mx * mx), (1, 1.0)):
        lo, hi = float(points[:, k].min()), float(points[:, k].max())
        span = hi - lo
        if span == 0:  # one value: a window where the loss doubles from the optimum's
            span = max(abs(lo) * 0.5, np.sqrt(max(best or 0.0, 1e-300) / curv), 1e-12)
            lo, hi = lo - span / 2, hi + span / 2
        frame.append((lo - 0.08 * span, hi + 0.08 * span))
    (m_lo, m_hi), (c_lo, c_hi) = frame
    M, C = np.meshgrid(np.linspace(m_lo, m_hi, 200), np.linspace(c_lo, c_hi, 200))
    R = my - M * mx - C
    Z = np.maximum(vyy - 2 * M * vxy + M * M * vxx, 0.0) + R * R
    if optimum is not None and int(levels) > 1:
        excess = np.maximum(Z - best, 0.0)
        top = float(excess.max())
        # evenly spaced ellipses: the excess grows as the square of the distance
        excess_levels = (top * (np.arange(1, int(levels) + 1) / int(levels)) ** 2
                         if top > 0 else None)
        if excess_levels is not None:
            # and inside the first, ellipses of half the size each, down to the one through
            # the fit (at most 6): the narrow valley of an ill-conditioned bowl shows
            r = np.array([m0 - optimum[0], c0 - optimum[1]])
            fit_excess = float(r @ np.array([[vxx + mx * mx, mx], [mx, 1.0]]) @ r)
            inner = excess_levels[0] / 4.0 ** np.arange(6, 0, -1)
            excess_levels = np.r_[inner[inner >= 0.999 * fit_excess], excess_levels]
    else:
        excess_levels = None
    if excess_levels is not None:
        cs = ax.contour(M, C, Z, levels=best + excess_levels, cmap="viridis", linewidths=0.8)
    else:
        ax.contour(M, C, Z, levels=int(levels), cmap="viridis", linewidths=0.8)
    ax.plot(path[:, 0], path[:, 1], color="tab:red", marker="." if path.shape[0] <= 200 else None,
            ms=3, lw=1, label=f"descent path ({_plural(path.shape[0] - 1, 'epoch')})")
    ax.plot([path[0, 0]], [path[0, 1]], ls="none", marker="o", ms=7, mfc="white", mec="black",
            label=f"start ({path[0, 0]:.4g}, {path[0, 1]:.4g})")
    ax.plot([m0], [c0], ls="none", marker="*", color="black", ms=11,
            label=f"fit ({m0:.4g}, {c0:.4g})")
    if optimum is not None:
        ax.plot([optimum[0]], [optimum[1]], ls="none", marker="P", color="tab:green", ms=8,
                mec="black", mew=0.5,
                label=f"least-squares optimum ({optimum[0]:.4g}, {optimum[1]:.4g})")
    ax.set_xlim(m_lo, m_hi)
    ax.set_ylim(c_lo, c_hi)
    ax.set_xlabel("slope m")
    ax.set_ylabel("intercept c")
    ax.set_title("mean squared error over (slope, intercept)")
    _legend_outside(ax)
    if excess_levels is not None:
        # labels last, on the axes as laid out with the legend (a layout pass, no pixels)
        _root_figure(ax).draw_without_rendering()
        # the curvature of the excess in (dm, dc): E[(dm x + dc)^2]
        curvature = np.array([[vxx + mx * mx, mx], [mx, 1.0]])
        chosen, where = _label_points(ax, frame, optimum, curvature, excess_levels)
        if chosen:
            ax.clabel(cs, levels=cs.levels[chosen], manual=where, inline=True, fontsize=7,
                      fmt=_level_text)
    return ax


def predictions(result, X, y, *, ax=None, max_points=MAX_POINTS):
    """The predictions against the targets (any number of features), with the line
    ``prediction = target`` and the R² of all the rows in the title.

    Parameters
    ----------
    result : FitResult
        A fit on ``d`` features (any number).
    X : array-like of shape (n, d) or (n,)
        The columns as fitted, by position (a frame's names are the caller's to check:
        :meth:`FitResult.predict` does).
    y : array-like of shape (n,)
        The targets of the rows of ``X``.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure's.
    max_points : int, default 20,000
        Points drawn at most (a seeded uniform subsample beyond; R² uses every row).

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = result.coef.shape[0]
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] != y.shape[0]:
        raise ValueError(f"predictions needs X of shape (n, {d}) and y of shape (n,) for this "
                         f"fit, got X {X.shape} and y {y.shape}")
    ax = _axes(ax, size=(6.8, 4.6))
    pred = X @ result.coef + result.intercept
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - pred) ** 2)) / sst if sst > 0 else float("nan")
    idx = _sample(y.shape[0], max_points)
    ax.scatter(y[idx], pred[idx], s=6, alpha=0.5, linewidths=0, color="tab:blue",
               label=f"rows ({y[idx].shape[0]:,} of {y.shape[0]:,})")
    lo = float(min(np.min(y), np.min(pred)))
    hi = float(max(np.max(y), np.max(pred)))
    pad = 0.04 * (hi - lo) if hi > lo else 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="tab:red", lw=1.5,
            label="prediction = target")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("target y")
    ax.set_ylabel("prediction")
    ax.set_title(f"predictions against targets (R² = {r2:.4g}, {_plural(d, 'feature')})")
    _legend_outside(ax)
    return ax


def summary(result, x, y, path=None, file=None, overwrite=False):
    """One figure with the pictures of a fit, written to ``file`` when given.

    One feature: :func:`fit_line`, :func:`loss_curve` and :func:`loss_surface` (``path``
    as there). Several: :func:`loss_curve` and :func:`predictions`.

    Parameters
    ----------
    result : FitResult
        The fit to picture.
    x : array-like of shape (n,) or (n, d)
        The features it was fitted on (one column: the three one-feature pictures).
    y : array-like of shape (n,)
        The targets it was fitted on.
    path : array-like of shape (k, 2), optional
        One feature only: the (slope, intercept) per epoch for :func:`loss_surface`;
        by default :func:`descent_path` records it by running the fit again.
    file : str, path-like or file object, optional
        Where to save the figure (at 110 dpi, in the format of the file's extension, PNG
        without one); by default it is not saved. A path is checked before anything is
        drawn, as the command line's outputs are: its folder must exist and be writable,
        and an existing file that is not an image is refused unless ``overwrite``; the
        file is written atomically (a failed write leaves no partial image).
    overwrite : bool
        Replace an existing file at ``file`` that is not an image (default False).

    Returns
    -------
    matplotlib Figure
        The figure, also when saved (close it with ``matplotlib.pyplot.close``).
    """
    import matplotlib.pyplot as plt

    fmt = None if file is None or hasattr(file, "write") else _image_file(file, overwrite)
    x = np.asarray(x, dtype=np.float64)
    one = x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1)
    fig, axes = plt.subplots(1, 3 if one else 2, figsize=(21, 5) if one else (14, 5),
                             layout="constrained")
    if one:
        fit_line(result, x, y, ax=axes[0])
        loss_curve(result, ax=axes[1])
        loss_surface(x, y, result, path=path, ax=axes[2])
    else:
        loss_curve(result, ax=axes[0])
        predictions(result, x, y, ax=axes[1])
    if fmt is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110)
        write_bytes(file, buf.getvalue())
    elif file is not None:  # a file object of the caller's
        fig.savefig(file, dpi=110)
    return fig


def _image_file(file, overwrite):
    """The image format of the path ``file`` (its extension; PNG without one), once the
    path is known to be writable and not someone else's file."""
    check_outputs([("file", file, "image")], overwrite=overwrite)
    return image_format("file", file)
