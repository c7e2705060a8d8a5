"""Pictures a user would publish (issue 20): each plot is rendered (Agg) and its properties
are read back from matplotlib: whole-number epoch ticks, titled and labelled axes, legends
outside the data and inside the figure, contour labels that do not overlap, and the
start, the fit and the least-squares optimum inside the frame. Oracles: numpy.linalg.lstsq
(the optimum), the fit's own result (the path's end), scikit-learn's r2_score."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgd
from fastgd.datasets import load_bike_calories, make_demo

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastgd import plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def bike():
    return load_bike_calories()


@pytest.fixture(scope="module")
def textbook(bike):
    """The issue's case: the tutorial run stops at intercept 0.089, the optimum is 7.99."""
    return fastgd.fit(*bike, learning_rate=1e-4, epochs=1000)


def _lstsq(x, y):
    (m, c), *_ = np.linalg.lstsq(np.c_[x, np.ones_like(x)], y, rcond=None)
    return m, c


def _rendered(ax):
    fig = ax.get_figure()
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _inside(ax, point):
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    return x0 < point[0] < x1 and y0 < point[1] < y1


def _assert_titled(ax):
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def _assert_legend_outside(ax):
    """The legend is drawn to the right of the axes (never on the data) and within the
    figure (not cut off)."""
    renderer = _rendered(ax)
    legend = ax.get_legend()
    assert legend is not None
    box, frame = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert box.x0 >= frame.x1, (box, frame)
    fig = ax.get_figure().bbox
    assert fig.x0 <= box.x0 and box.x1 <= fig.x1 + 0.5 and fig.y0 <= box.y0 and box.y1 <= fig.y1 + 0.5


def _assert_integer_ticks(ax):
    lo, hi = sorted(ax.get_xlim())
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 2 and all(t == round(t) for t in ticks), ticks


def _contour_labels(ax):
    return [t for t in ax.texts if t.get_text()]


def _assert_labels_apart(ax, at_least=1):
    """Contour labels: some, at most MAX_LABELS, inside the axes, no two overlapping."""
    renderer = _rendered(ax)
    labels = _contour_labels(ax)
    assert at_least <= len(labels) <= plot.MAX_LABELS, len(labels)
    boxes = [t.get_window_extent(renderer) for t in labels]
    frame = ax.get_window_extent(renderer)
    for i, b in enumerate(boxes):
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
        for other in boxes[:i]:
            assert not b.overlaps(other), (labels[i].get_text(), b, other)
    return labels


# --- loss curve --------------------------------------------------------------------------------

@pytest.mark.parametrize("epochs", [1, 3, 7, 1000])
def test_loss_curve_has_whole_epoch_ticks_and_a_plural_title(bike, epochs):
    res = fastgd.fit(*bike, learning_rate=1e-4, epochs=epochs)
    ax = plot.loss_curve(res)
    _rendered(ax)
    _assert_integer_ticks(ax)
    _assert_titled(ax)
    title = ax.get_title()
    assert ("1 epoch," in title) if epochs == 1 else (f"{epochs:,} epochs," in title), title
    assert "epoch(s)" not in title and "1 epochs" not in title
    assert np.array_equal(ax.lines[0].get_ydata(), res.loss_history)


def test_loss_curve_is_logarithmic_only_over_a_decade_or_more(bike):
    res = fastgd.fit(*bike, learning_rate=1e-4, epochs=50)   # 5565 -> 112: 50-fold
    assert plot.loss_curve(res).get_yscale() == "log"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = X @ [1.0, 2.0, 3.0] + 1 + rng.normal(size=500)
    res = fastgd.fit(X, y, learning_rate=0.01, epochs=1)       # 16.0 -> 15.4
    assert res.loss_history.max() < 10 * res.loss_history.min()
    ax = plot.loss_curve(res)
    assert ax.get_yscale() == "linear"
    _assert_integer_ticks(ax)


# --- fit line ----------------------------------------------------------------------------------

def test_fit_line_is_titled_and_its_legend_is_outside(bike, textbook):
    ax = plot.fit_line(textbook, *bike)
    _assert_titled(ax)
    _assert_legend_outside(ax)
    line = ax.lines[0].get_xydata()
    assert (line[1, 1] - line[0, 1]) / (line[1, 0] - line[0, 0]) == pytest.approx(textbook.slope)
    assert "y = 1.478 x + 0.08894" in ax.get_legend().get_texts()[1].get_text()


def test_fit_line_names_the_feature_of_a_frame():
    pd = pytest.importorskip("pandas")
    x, y = make_demo(2000, seed=1)
    res = fastgd.fit(pd.DataFrame({"distance": x}), y)
    assert plot.fit_line(res, x, y).get_xlabel() == "distance"


# --- loss surface ------------------------------------------------------------------------------

def test_loss_surface_frames_the_start_the_fit_and_the_optimum(bike, textbook):
    x, y = bike
    m_opt, c_opt = _lstsq(x, y)
    assert c_opt == pytest.approx(7.99102098573444, rel=1e-9)  # the optimum
    path = plot.descent_path(x, y, textbook)
    ax = plot.loss_surface(x, y, textbook, path=path)
    for point in [(0.0, 0.0), (textbook.slope, textbook.intercept), (m_opt, c_opt), *path]:
        assert _inside(ax, point), point
    assert np.array_equal(ax.lines[0].get_xydata(), path)
    # the markers: start, fit, optimum (the optimum drawn is lstsq's)
    marks = {line.get_label().split(" (")[0]: line.get_xydata()[0] for line in ax.lines[1:]}
    assert np.array_equal(marks["start"], [0.0, 0.0])
    assert np.array_equal(marks["fit"], [textbook.slope, textbook.intercept])
    np.testing.assert_allclose(marks["least-squares optimum"], [m_opt, c_opt], rtol=1e-10)
    assert ax.lines[0].get_label() == "descent path (1,000 epochs)"
    _assert_titled(ax)
    _assert_legend_outside(ax)
    labels = _assert_labels_apart(ax, at_least=3)
    # the labels are the MSE of their contour, which lstsq's MSE bounds from below
    best = np.mean((y - m_opt * x - c_opt) ** 2)
    assert all(float(t.get_text()) > best for t in labels)


@pytest.mark.parametrize("kw", [dict(), dict(mode="sgd", epochs=4, random_state=0),
                                dict(learning_rate=1e-2, epochs=40)])
def test_loss_surface_on_the_demo_problem(kw):
    x, y = make_demo(50_000, seed=2)
    res = fastgd.fit(x, y, **kw)
    ax = plot.loss_surface(x, y, res)
    path = ax.lines[0].get_xydata()
    assert path.shape == (res.n_epochs + 1, 2)
    for point in [(0.0, 0.0), (res.slope, res.intercept), _lstsq(x, y), *path]:
        assert _inside(ax, point), point
    _assert_labels_apart(ax, at_least=3)
    _assert_legend_outside(ax)
    assert "1 epochs" not in ax.lines[0].get_label()


def test_loss_surface_on_an_axes_of_yours(bike, textbook):
    """An axes of a subfigure in a figure of the caller's: labels placed on it as laid out."""
    fig = plt.figure(figsize=(14, 5), layout="constrained")
    left, right = fig.subfigures(1, 2)
    ax = plot.loss_surface(*bike, textbook, ax=right.add_subplot())
    plot.loss_curve(textbook, ax=left.add_subplot())
    _assert_labels_apart(ax, at_least=3)
    _assert_legend_outside(ax)


def test_a_path_given_starts_where_it_says(bike, textbook):
    x, y = bike
    path = np.array([[2.0, -3.0], [1.6, -1.0], [textbook.slope, textbook.intercept]])
    ax = plot.loss_surface(x, y, textbook, path=path)
    assert _inside(ax, (2.0, -3.0)) and _inside(ax, _lstsq(x, y))
    with pytest.raises(ValueError, match=r"path must be a \(k, 2\) array"):
        plot.loss_surface(x, y, textbook, path=[1.0, 2.0])


def test_descent_path_refuses_a_fit_it_cannot_replay(bike):
    x, y = bike
    res = fastgd.fit(x, y, learning_rate=1e-4, epochs=20, init_coef=[1.0], init_intercept=5.0)
    with pytest.raises(ValueError, match="init_coef/init_intercept or used sample_weight"):
        plot.descent_path(x, y, res)
    with pytest.raises(ValueError, match="record the path with fit"):
        plot.loss_surface(x, y, res)


# --- several features, and the summary figure --------------------------------------------------

def test_predictions_panel_is_titled_square_and_scored():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + 2 + rng.normal(0, 0.5, 3000)
    res = fastgd.fit(X, y)
    fig = plot.summary(res, X, y)
    assert len(fig.axes) == 2
    curve, panel = fig.axes
    _assert_integer_ticks(curve)
    for ax in fig.axes:
        _assert_titled(ax)
    r2 = sklearn_metrics.r2_score(y, X @ res.coef + res.intercept)
    assert panel.get_title().startswith(f"predictions against targets (R² = {r2:.4g}, 4 features")
    assert panel.get_xlim() == panel.get_ylim()
    identity = panel.lines[0].get_xydata()
    assert np.array_equal(identity[:, 0], identity[:, 1])
    pred = panel.collections[0].get_offsets()
    assert _inside(panel, (pred[:, 0].min(), pred[:, 1].min()))
    assert _inside(panel, (pred[:, 0].max(), pred[:, 1].max()))
    _assert_legend_outside(panel)
    with pytest.raises(ValueError, match=r"predictions needs X of shape \(n, 4\)"):
        plot.predictions(res, X[:, :3], y)


def test_summary_of_one_feature(bike, textbook, tmp_path):
    x, y = bike
    fig = plot.summary(textbook, x, y, file=tmp_path / "fit.png")
    assert (tmp_path / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    line, curve, surface = fig.axes[:3]
    for ax in (line, curve, surface):
        _assert_titled(ax)
    _assert_integer_ticks(curve)
    for ax in (line, surface):
        _assert_legend_outside(ax)
    _assert_labels_apart(surface, at_least=3)
    assert _inside(surface, _lstsq(x, y)) and _inside(surface, (0.0, 0.0))


def test_summary_checks_its_file_before_drawing_and_never_destroys_data(bike, textbook,
                                                                        tmp_path):
    """The checks of the command line's outputs (fastgd._outputs) for the API's file=:
    nothing is drawn into a missing folder, over a data file or in an unknown format; an
    image is replaced; a file object is the caller's."""
    x, y = bike
    data = tmp_path / "bike.csv"
    data.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="exists and is not an image"):
        plot.summary(textbook, x, y, file=data)
    assert data.read_text() == "x,y\n1,2\n"
    with pytest.raises(ValueError, match="does not exist"):
        plot.summary(textbook, x, y, file=tmp_path / "missing" / "fit.png")
    with pytest.raises(ValueError, match=r"does not write \.xyz files"):
        plot.summary(textbook, x, y, file=tmp_path / "fit.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bike.csv"]  # (no temp files)
    notes = tmp_path / "notes.png"  # text under an image's name
    notes.write_text("not a picture")
    with pytest.raises(ValueError, match="pass overwrite=True to replace it"):
        plot.summary(textbook, x, y, file=notes)
    plot.summary(textbook, x, y, file=notes, overwrite=True)  # the user's say-so
    assert notes.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "fit.svg"
    plot.summary(textbook, x, y, file=svg)
    plot.summary(textbook, x, y, file=svg)  # an image replaces an image
    assert svg.read_text().lstrip().startswith("<?xml")
    buf = io.BytesIO()
    plot.summary(textbook, x, y, file=buf)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cli_figure_frames_the_optimum(tmp_path, bike):
    x, y = bike
    np.savetxt(tmp_path / "bike.csv", np.c_[x, y], delimiter=",", fmt="%.17g")
    out = subprocess.run(["fastgd", "fit", str(tmp_path / "bike.csv"), "--no-header", "--x", "0",
                          "--y", "1", "--learning-rate", "1e-4", "--epochs", "1000",
                          "--plot", str(tmp_path / "fit.png"), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    image = plt.imread(tmp_path / "fit.png")
    assert image.shape[1] > 2 * image.shape[0]  # three panels side by side


# --- the README's convergence figure -----------------------------------------------------------

def test_plot_convergence_script_never_replaces_the_tracked_figure(tmp_path):
    tracked = ROOT / "docs" / "convergence.png"
    before = (tracked.read_bytes(), tracked.stat().st_mtime_ns)
    script = str(ROOT / "docs" / "plot_convergence.py")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    for cwd in (ROOT, ROOT / "docs", tmp_path):  # from any folder, the docs folder too
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True,
                              cwd=cwd, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        written = Path(proc.stdout.strip().removeprefix("wrote "))
        assert written.parent.parent == tmp_path and written.read_bytes()[:4] == b"\x89PNG"
    proc = subprocess.run([sys.executable, script, "--output", str(tmp_path / "c.png")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0 and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG", proc.stderr
    assert (tracked.read_bytes(), tracked.stat().st_mtime_ns) == before
    data = tmp_path / "data.png"  # someone else's file under an image's name: refused at once
    data.write_text("x,y\n1,2\n")
    proc = subprocess.run([sys.executable, script, "--output", str(data)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "exists and is not an image" in proc.stderr, proc.stderr
    assert data.read_text() == "x,y\n1,2\n"


def test_the_module_example_runs():
    import doctest

    out = doctest.testmod(plot, verbose=False)
    assert out.attempted >= 8 and out.failed == 0, out
