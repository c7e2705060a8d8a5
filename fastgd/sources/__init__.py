"""Sources of rows: where the data lives, and the block passes the algorithms ask for.

The optimizers, the stopping rules and the stochastic drivers never touch an array of
data: they ask a source for a pass. A source runs each pass block by block with the same
compiled kernels (:mod:`fastgd.kernels`), or NumPy's passes for small blocks
(:mod:`.small`), and merges the per-block partials in block order, so a result depends on
the data and the block boundaries only, never on timing or thread count. A source owns no
maths: every formula lives in a kernel, a loss or a solver.

The passes (see :class:`Source`): ``check_finite()``; ``sse_grad(coef)`` and
``loss_grad(coef, loss, c)`` (loss and gradient sums at a point); ``moments(full)``
(weighted means and centred co-moments, or per-column second moments);
``max_norm(...)`` (the largest step curvature of SGD); ``qr(...)`` (the R factor of the
scaled design); ``split(...)`` and ``subset_loss(...)`` (early stopping's held-out rows);
``epochs(...)`` (the blocks of each stochastic epoch with the order to visit their rows);
``fingerprint()`` (what a checkpoint checks on resume).

The sources, one module each: :class:`ArraySource` (``arrays``: the arrays given to
:func:`fastgd.fit`, one block, no copy), :class:`ChunkSource` (``chunks``: blocks of rows,
:func:`fastgd.fit_chunks`), :class:`FileSource` (``files``: a CSV or Parquet file read in
blocks, :func:`fastgd.fit_file`), :class:`DaskSource` (``dask``: a dask collection's
blocks, run where they are), and :class:`Rescaled` (``units``: any of them in power-of-two
units). :func:`open_source` is the one place that picks a source for an input.
"""
from .. import _frames
from .. import _validation as V
from .arrays import ArraySource
from .base import DataFacts, Source
from .chunks import ChunkSource
from .dask import DaskSource, is_dask
from .files import FileReader, FileSource
from .passes import epoch_seed, merge_moments, permutation, tile_rows
from .units import Rescaled, exponents, rescaled

#: the kinds of source a checkpoint names (``Source.kind``)
KINDS = ("arrays", "chunks", "file", "dask")


def open_source(X=None, y=None, sample_weight=None, *, chunks=None, reader=None,
                parallel="auto", check_finite=False):
    """The source of any input: a :class:`FileReader` (``reader=``), blocks
    (``chunks=``, see :func:`fastgd.fit_chunks`), dask collections, or arrays and data
    frames (validated once here, see :func:`fastgd._validation.check_data`). ``parallel``
    is the user's setting, resolved per block by its size. ``check_finite``: check
    arrays for NaN/inf now (else the first pass proves them finite, or searches).

    The source's ``names`` are X's column names (a frame's, or a file's ``x`` columns).
    """
    parallel = V.check_parallel(parallel)
    if reader is not None:
        return FileSource(reader, parallel=parallel)
    if chunks is not None:
        return ChunkSource(chunks, parallel=parallel)
    if any(is_dask(a) for a in (X, y, sample_weight)):
        from .dask import source_for

        return source_for(X, y, sample_weight)
    data = V.check_data(X, y, sample_weight, parallel=parallel, check_finite_xy=check_finite)
    source = ArraySource(data, V.use_parallel_for(parallel, data), verified=check_finite)
    source.names = _frames.column_names(X)
    return source


def reopen(fingerprint, X=None, y=None, sample_weight=None, *, chunks=None, parallel="auto"):
    """The source that a checkpoint's ``fingerprint`` was written for, opened again: a
    file from the fingerprint itself (``X``, ``y`` must be None), blocks from ``chunks``,
    dask collections or arrays from ``X`` and ``y``. A kind of data other than the
    checkpoint's is a ``TypeError`` saying what to pass."""
    kind = "file" if "file" in fingerprint else fingerprint.get("source") or "arrays"
    if kind == "file":
        if X is not None or y is not None or sample_weight is not None or chunks is not None:
            raise TypeError(f"the checkpoint continues a fit of the file {fingerprint['file']}, "
                            "which resume opens again (its weights included): call "
                            "fastgd.resume(path) without X, y, sample_weight or chunks")
        x, target, weight = fingerprint["x"], fingerprint["y"], fingerprint["weight"]
        if "columns" in fingerprint:  # the positions read (names may repeat in a CSV header)
            cols = list(fingerprint["columns"])
            x, target = cols[:len(x)], cols[len(x)]
            weight = None if weight is None else cols[len(x) + 1]
        reader = FileReader(fingerprint["file"], x, target, weight, header=fingerprint["header"],
                            block_rows=fingerprint["block_rows"],
                            delimiter=fingerprint["delimiter"])
        source = open_source(reader=reader, parallel=parallel)
        source.names = tuple(fingerprint["x"])
        return source
    if chunks is not None:
        if X is not None or y is not None or sample_weight is not None:
            raise TypeError("fastgd.resume(path, chunks=blocks) takes the blocks alone: the "
                            "weights come with the blocks, as (X, y, sample_weight) tuples")
        return open_source(chunks=chunks, parallel=parallel)
    if kind == "chunks":
        raise TypeError("the checkpoint continues a fit_chunks fit: pass the same blocks again, "
                        "fastgd.resume(path, chunks=blocks)")
    if X is None or y is None:
        raise TypeError("the checkpoint continues a fit of "
                        + ("dask collections" if kind == "dask" else "arrays")
                        + ": pass the same X and y again, fastgd.resume(path, X, y)")
    # (other data than the checkpoint's, e.g. arrays for a dask fit, is refused by the
    # fingerprints' comparison, which says which kind of data the fit needs)
    return open_source(X, y, sample_weight, parallel=parallel)


__all__ = ["ArraySource", "ChunkSource", "DaskSource", "DataFacts", "FileReader", "FileSource",
           "KINDS", "Rescaled", "Source", "epoch_seed", "exponents", "is_dask",
           "merge_moments", "open_source", "permutation", "reopen", "rescaled", "tile_rows"]

