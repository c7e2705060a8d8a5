"""Turn a saved pytest-benchmark JSON into a markdown report and a bar chart.

Usage::

    python bench/report.py SAVED.json [--out-md FILE] [--out-png FILE] [--groups REGEX]

``SAVED.json`` is what ``pytest bench --benchmark-json=FILE`` writes, or a file under
``.benchmarks/`` from ``--benchmark-autosave`` / ``--benchmark-save=NAME``. Without
``--out-md`` the markdown goes to stdout. ``--groups`` keeps the groups whose name
matches the regular expression (``re.search``), e.g. ``"^batch-epoch\\|n=10000000"``.

One table per benchmark group (one workload, the contenders side by side):

* ``min`` and ``median`` of the timed call;
* ``per epoch``: ``min / extra_info["epochs"]`` (the ``fit(..., epochs=K)`` benchmarks
  time K epochs per call; "-" where a call is not a fixed number of epochs, as for the
  fits to convergence); ``ns/row`` and ``GB/s`` (bytes of X and y over that time);
* ``x ref``: per-epoch time over the bandwidth reference's (the compiled streaming read
  of the same bytes, measured in the same run). The reference of the same group is used;
  groups without one (fits, stochastic epochs) use the reference of the same workload from
  another group of the file, marked with a dagger; "-" when the file has none;
* ``/A``, ``/B``, ...: the row's per-epoch time over each peer's (rows are lettered), so
  "0.25 under /C" reads "four times faster than C";
* ``loss`` and the notes the benchmark recorded in ``extra_info``.

Ratios use the minimum times: on a shared machine the minimum is the least disturbed
estimate of what a call costs. All figures come from the one file: never compare ratios
across machines or days.
"""
import argparse
import json
import math
import re
import sys
from collections import OrderedDict
from pathlib import Path

#: extra_info keys shown as notes, in this order, when a benchmark recorded them.
NOTE_KEYS = (
    "excess", "loss_rel_err", "n_epochs", "n_passes", "parts", "solver", "optimizer",
    "extra_mb", "input_mb", "method", "overhead_s", "fit_s", "epoch_s", "validation_s",
    "ns_per_row", "torch_threads", "computes", "wall_s", "ref_ratio_interleaved",
)


def fmt_time(s):
    """Seconds with a unit: ``3.81 ms``."""
    if s is None or not math.isfinite(s):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(s) >= scale or unit == "ns":
            return f"{s / scale:.3g} {unit}"
    return f"{s:.3g} s"


def fmt_num(v):
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if v == 0 or not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def fmt_ratio(r):
    if r is None or not math.isfinite(r):
        return "-"
    return f"{r:.3g}"


class Row:
    """One benchmark of the file, with the figures the report derives from it."""

    def __init__(self, bench):
        self.bench = bench
        self.info = bench.get("extra_info") or {}
        stats = bench.get("stats") or {}
        self.min = stats.get("min")
        self.median = stats.get("median")
        self.group = bench.get("group") or "(no group)"
        self.name = self.info.get("contender") or bench.get("name") or "?"
        self.key = None  # the letter, set per group

    @property
    def epochs(self):
        """Epochs per timed call, or None when the call is not a fixed number of epochs."""
        if "epochs" in self.info:
            e = self.info["epochs"]
            return e if isinstance(e, (int, float)) and e > 0 else None
        return 1 if self.info.get("reference") else None

    @property
    def per_epoch(self):
        e = self.epochs
        return None if e is None or self.min is None else self.min / e

    @property
    def process_timed(self):
        """The time is a whole helper process (memory probes): not a cost to compare."""
        return self.info.get("timed") == "process"

    @property
    def is_reference(self):
        return bool(self.info.get("reference"))

    @property
    def workload(self):
        i = self.info
        if all(k in i for k in ("n", "d", "dtype")):
            return (i["n"], i["d"], i["dtype"])
        return None


def load(path):
    with open(path) as f:
        data = json.load(f)
    if "benchmarks" not in data:
        raise ValueError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' key)")
    return data


def group_rows(data, pattern=None):
    """``{group: [Row, ...]}`` in file order, the reference first, then by time."""
    groups = OrderedDict()
    for b in data["benchmarks"]:
        row = Row(b)
        if pattern is not None and not re.search(pattern, row.group):
            continue
        groups.setdefault(row.group, []).append(row)
    for rows in groups.values():
        rows.sort(key=lambda r: (not r.is_reference,
                                 r.per_epoch if r.per_epoch is not None else (r.min or math.inf)))
        for k, r in enumerate(rows):
            r.key = _letters(k)
    return groups


def _letters(k):
    s = ""
    k += 1
    while k:
        k, rem = divmod(k - 1, 26)
        s = chr(65 + rem) + s
    return s


def references(data):
    """``{workload: reference Row}`` over the whole file (for groups lacking their own)."""
    refs = {}
    for b in data["benchmarks"]:
        r = Row(b)
        if r.is_reference and r.workload is not None and r.per_epoch is not None:
            refs.setdefault(r.workload, r)
    return refs


def group_reference(rows, refs):
    """``(reference row or None, borrowed)`` for one group."""
    for r in rows:
        if r.is_reference and r.per_epoch:
            return r, False
    wl = {r.workload for r in rows if r.workload is not None}
    if len(wl) == 1:
        ref = refs.get(wl.pop())
        if ref is not None:
            return ref, True
    return None, False


def _time_for_ratio(r):
    return r.per_epoch if r.per_epoch is not None else r.min


def markdown(data, pattern=None):
    groups = group_rows(data, pattern)
    refs = references(data)
    out = ["# fastgd benchmarks", ""]
    mi = data.get("machine_info") or {}
    cpu = (mi.get("cpu") or {}).get("brand_raw") or mi.get("processor") or "?"
    threads = sorted({r.info.get("threads") for rows in groups.values() for r in rows
                      if r.info.get("threads") is not None})
    ci = data.get("commit_info") or {}
    out.append(f"- date: {data.get('datetime', '?')}")
    out.append(f"- machine: {mi.get('node', '?')}, {cpu}, {(mi.get('cpu') or {}).get('count', '?')}"
               f" logical CPUs, Python {mi.get('python_version', '?')}")
    out.append(f"- numba threads: {', '.join(map(str, threads)) or '?'}")
    if ci.get("id"):
        out.append(f"- commit: {ci.get('id', '')[:12]}{' (dirty)' if ci.get('dirty') else ''}"
                   f" on {ci.get('branch', '?')}")
    out.append(f"- pytest-benchmark {data.get('version', '?')}; ratios from minimum times,"
               " per epoch; `x ref` = times the bandwidth reference (same run)")
    out.append("")
    if not groups:
        out.append("(no benchmarks" + (f" in groups matching {pattern!r})" if pattern else ")"))
        return "\n".join(out) + "\n"
    borrowed_any = False
    for group, rows in groups.items():
        ref, borrowed = group_reference(rows, refs)
        out.append(f"## {group}")
        out.append("")
        head = ["", "contender", "min", "median", "per epoch", "ns/row", "GB/s", "x ref"]
        head += [f"/{r.key}" for r in rows]
        head += ["loss", "notes"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * len(head)) + "|")
        for r in rows:
            t = r.per_epoch
            n = r.info.get("n")
            nbytes = r.info.get("bytes")
            ns_row = 1e9 * t / n if t and n else None
            gbs = nbytes / t / 1e9 if t and nbytes else None
            if ref is not None and t is not None and ref.per_epoch:
                xref = fmt_ratio(t / ref.per_epoch) + (" \u2020" if borrowed else "")
                borrowed_any |= borrowed
            else:
                xref = "-"
            ratios = []
            for p in rows:
                a, b = _time_for_ratio(r), _time_for_ratio(p)
                comparable = ((r.per_epoch is None) == (p.per_epoch is None)
                              and not r.process_timed and not p.process_timed)
                ratios.append(fmt_ratio(a / b) if a and b and comparable else "-")
            notes = ", ".join(f"{k}={fmt_num(r.info[k])}" for k in NOTE_KEYS
                              if r.info.get(k) is not None)
            cells = [r.key, r.name + (" (reference)" if r.is_reference else ""),
                     fmt_time(r.min), fmt_time(r.median), fmt_time(t),
                     fmt_num(ns_row), fmt_num(gbs), xref, *ratios,
                     fmt_num(r.info.get("loss")), notes]
            out.append("| " + " | ".join(str(c) for c in cells) + " |")
        out.append("")
    if borrowed_any:
        out.append("\u2020 against the bandwidth reference of the same workload, measured in "
                   "another group of this run.")
        out.append("")
    return "\n".join(out) + "\n"


def plot(data, path, pattern=None):
    """A horizontal bar chart per group (per-epoch minimum, else the minimum), to ``path``."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            'the chart needs matplotlib: pip install "fastgd[bench]" (or pip install matplotlib)'
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_rows(data, pattern)
    refs = references(data)
    if not groups:
        where = f" in groups matching {pattern!r}" if pattern else ""
        raise ValueError(f"no benchmarks to plot{where}")
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    tallest = max(len(rows) for rows in groups.values())
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, (0.35 * tallest + 1.2) * nrows),
                             squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, (group, rows) in zip(axes.flat, groups.items()):
        labels, values, colors, xlabel, fmt = _bars(rows)
        y = list(range(len(values)))[::-1]
        ax.barh(y, [v if v is not None else math.nan for v in values], color=colors)
        ax.set_yticks(y, labels, fontsize=8)
        finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
        if finite and max(finite) / min(finite) > 30:
            ax.set_xscale("log")
        ref, _ = group_reference(rows, refs)
        if xlabel.startswith("seconds") and ref is not None and ref.per_epoch and any(
                r.per_epoch is not None for r in rows):
            ax.axvline(ref.per_epoch, color="0.3", ls="--", lw=0.8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(group, fontsize=9)
        for yi, v in zip(y, values):
            if v is not None and math.isfinite(v):
                ax.text(v, yi, " " + fmt(v), va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bars(rows):
    """``(labels, values, colors, xlabel, formatter)`` of one group's chart.

    Memory probes chart their extra megabytes; the overhead benchmark its parts (fit,
    pure epoch, validation); everything else the per-epoch (else per-call) minimum."""

    def color(r):
        return "0.55" if r.is_reference else ("C0" if r.name.startswith("fastgd") else "C1")

    if all(r.info.get("extra_mb") is not None for r in rows):
        return ([r.name for r in rows], [r.info["extra_mb"] for r in rows],
                [color(r) for r in rows], "MB above the input arrays (peak RSS in the fit)",
                lambda v: f"{v:.3g} MB")
    if len(rows) == 1 and rows[0].info.get("overhead_s") is not None:
        i = rows[0].info
        parts = [("fit(epochs=1)", i.get("fit_s")), ("one pure epoch", i.get("epoch_s")),
                 ("check_data alone", i.get("validation_s")),
                 ("overhead = fit - passes x epoch", i.get("overhead_s"))]
        return ([p[0] for p in parts], [p[1] for p in parts], ["C0", "0.55", "C1", "C3"],
                "seconds (best of interleaved runs)", fmt_time)
    per_epoch = any(r.per_epoch is not None and (r.epochs or 1) > 1 for r in rows)
    return ([r.name for r in rows], [_time_for_ratio(r) for r in rows], [color(r) for r in rows],
            "seconds per epoch (min)" if per_epoch else "seconds per call (min)", fmt_time)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("saved", type=Path, help="a pytest-benchmark JSON file")
    p.add_argument("--out-md", type=Path, help="write the markdown here (default: stdout)")
    p.add_argument("--out-png", type=Path, help="write a bar chart here (needs matplotlib)")
    p.add_argument("--groups", help="only the groups matching this regular expression")
    args = p.parse_args(argv)
    data = load(args.saved)
    md = markdown(data, args.groups)
    if args.out_md:
        args.out_md.write_text(md)
    else:
        sys.stdout.write(md)
    if args.out_png:
        plot(data, args.out_png, args.groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
