"""Files: fits of CSV and Parquet files bigger than memory (``pip install "fastgd[io]"``),
and the JSON model file.

:func:`fit_file` fits the columns of a file read in blocks: one more source of rows
(:class:`fastgd.sources.FileSource` over a :class:`FileReader`), with no maths of its own.
Every pass reads the file again, block by block, so memory stays bounded by the block
size whatever the file's size. pyarrow does the reading: Parquet by row groups (or
batches), CSV by byte ranges cut at line starts, so that the blocks of either can be read
in any order.

Also here: :func:`save` / :func:`load`, the JSON model file that ``fastgd predict`` uses.
"""
import time

import numpy as np

from . import _pipeline as pipeline
from ._model import save  # noqa: F401 (fastgd.io.save)
from ._plan import FitPlan, check_entry
from .sources import open_source
from .sources.files import FileReader

__all__ = ["FileReader", "fit_file", "load", "save"]

def fit_file(path, *, x, y, weight=None, header=True, delimiter=",", block_rows=None,
             **fit_kwargs):
    """Fit the columns ``x`` (X) and ``y`` of a CSV or Parquet file, read in blocks.

    Parameters
    ----------
    path : str or path-like
        A ``.parquet`` / ``.pq`` file, or CSV (any other name). A regular file: a pipe
        or a device is refused (the file is read several times).
    x : list of str or int
        The columns of X: a name, or a position (an ``int``, or a string of digits that
        is not a column's name). A name that several columns share is refused: give
        their positions (see :class:`FileReader`).
    y : str or int
        The target column, by name or position as for ``x``.
    weight : str, int or None, optional
        A column of sample weights, by name or position (non-negative, not all zero; see
        ``sample_weight`` of :func:`fastgd.fit`). Default None: every row weighs 1.
    header : bool
        CSV: whether the first line names the columns (else only positions name them).
    delimiter : str
        CSV: the one character between fields (default ",").
    block_rows : int >= 1, optional
        Rows per block (default: 64 MiB of float64 per block, at most 2^20 rows). Memory
        stays bounded by a few blocks, whatever the file's size.
    **fit_kwargs
        As :func:`fastgd.fit`. Every mode works: batch adds exact block partials in
        order (equal to the in-memory fit to 1e-12; the default fit reads the file
        twice); the stochastic modes shuffle the rows of each block and the order of the
        blocks (a Parquet file's row groups, when there are several of bounded size; a
        CSV file's byte ranges of about ``block_rows`` lines, cut at line starts). That
        is not a global shuffle: see :func:`fastgd.fit_chunks`. ``checkpoint`` must not
        be the file itself (``overwrite`` as for :func:`fastgd.fit`).

    Returns
    -------
    FitResult
        As :func:`fastgd.fit` returns it, with ``feature_names`` the names of the ``x``
        columns and ``n_rows`` the data rows of the file.

    Raises
    ------
    ValueError, TypeError
        Bad parameters (checked before the file is read), a file without data rows, a
        CSV line with the wrong number of fields or a cell that is not a number (with
        its line and column), and a file rewritten during the fit (every block read
        checks its size, modification time, inode and, for Parquet, its footer).
    """
    t0 = time.perf_counter()
    if y is None:
        raise TypeError("fit_file needs the target column: y='name' (or a position)")
    if "sample_weight" in fit_kwargs:
        raise TypeError("fit_file takes the weights from a column: give weight='column'")
    reader = FileReader(path, x, y, weight, header=header, block_rows=block_rows,
                        delimiter=delimiter)
    source = open_source(reader=reader, parallel=fit_kwargs.get("parallel", "auto"))
    init_coef = fit_kwargs.pop("init_coef", None)
    init_intercept = fit_kwargs.pop("init_intercept", 0.0)
    checkpoint = fit_kwargs.pop("checkpoint", None)
    overwrite = fit_kwargs.pop("overwrite", False)
    callback, progress, every = check_entry(
        callback=fit_kwargs.pop("callback", None), progress=fit_kwargs.pop("progress", "auto"),
        checkpoint_every=fit_kwargs.pop("checkpoint_every", 1))
    plan = FitPlan.build(source.facts(), **fit_kwargs)
    return pipeline.start(source, plan, init_coef=init_coef, init_intercept=init_intercept,
                          callback=callback, progress=progress, checkpoint=checkpoint,
                          checkpoint_every=every, overwrite=overwrite, t0=t0)


# ---------------------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------------------

def load(path):
    """Read a model file written by :func:`save` (``FitResult.save``).

    Every field is checked (types, shapes, finiteness, agreement with the plan; see
    :func:`fastgd._model.read_model`): a damaged or hand-edited file that does not hold
    a valid model raises one ``ValueError`` naming the file and the field, e.g.
    ``model.json: field 'coef[0]' is NaN``. A file from a newer fastgd is refused.

    Parameters
    ----------
    path : str or path-like
        The model file (JSON), as written by :func:`save` or ``fastgd fit --save-model``.

    Returns
    -------
    FitResult
        The saved model: ``coef``, ``intercept``, ``feature_names``, ``plan`` and the
        fit's counters, so that ``predict`` works as on the fitted result. Its
        ``loss_history`` holds the final loss only (NaN when the saved result had
        none), ``learning_rate`` is NaN and ``elapsed_s`` is 0.

    Raises
    ------
    ValueError
        The file is not a fastgd model file, is damaged, or is from a newer fastgd.
    OSError
        The file cannot be read (e.g. ``FileNotFoundError``).
    """
    from . import FitResult
    from ._model import read_model

    m = read_model(path)
    plan = m["plan"]
    return FitResult(
        coef=m["coef"], intercept=m["intercept"], loss_history=np.array([m["final_loss"]]),
        n_epochs=m["n_epochs"], converged=m["converged"],
        mode=None if plan is None else plan.mode, learning_rate=float("nan"), elapsed_s=0.0,
        reduction="mean" if plan is None else plan.reduction, one_d=m["one_d"],
        scaled=m["scaled"], plan=plan, feature_names=m["feature_names"],
    )
