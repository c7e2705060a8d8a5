"""The visiting orders of the stochastic epochs: a permutation of each block's rows per
epoch (drawn from the fit's generator; in tiles of neighbouring rows for large CSR
blocks, :func:`~fastgd.sources.passes.tile_rows`), and of the blocks themselves where a
source can read them in any order."""
import numpy as np

from .passes import block_order, epoch_seed, permutation, tile_rows


class _BlockEpochs:
    """Epochs over several blocks: block order shuffled (when the source has random
    access) and each block's rows in a fresh permutation, all drawn from ``rng``."""

    def __init__(self, source, rng, shuffle, rows):
        self.source, self.rng, self.shuffle, self.rows = source, rng, shuffle, rows

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def next(self):
        src = self.source
        nb = src.n_blocks
        if self.shuffle and src.random_access and nb > 1:
            order = self.rng.permutation(nb)
            blocks = (src._block(int(k)) for k in order)
        else:
            blocks = src._blocks()
        for b in blocks:
            rows = None if self.rows is None else self.rows[b.index]
            seed = epoch_seed(self.rng) if self.shuffle else None
            yield b, block_order(b.data, seed, rows)

    def skip(self):
        """Draw what :meth:`next` draws from ``rng`` for one epoch, without reading any
        block (resuming a checkpoint replays the random stream this way)."""
        if not self.shuffle:
            return
        nb = self.source.n_blocks
        if self.source.random_access and nb > 1:
            self.rng.permutation(nb)
        for _ in range(nb):
            epoch_seed(self.rng)


# ---------------------------------------------------------------------------------------
# In-memory arrays
# ---------------------------------------------------------------------------------------

#: from this many rows, serial SGD builds the next epoch's permutation on a background
#: thread while the current epoch runs. Measured per epoch (2 cores, d = 1), without /
#: with: 4e6 rows raw SGD 150 / 105 ms, default (scaled, averaged) 145 / 131 ms; 1e6
#: rows raw 18 / 13 ms but default 14 / 17 ms (the data sits in cache, the epoch is as
#: short as the serial permutation, and the background thread then contends with the
#: parallel loss pass). Hence only for data well beyond the caches.
PREFETCH_MIN_ROWS = 1 << 21


class Permutations:
    """The visiting order of each epoch over ``m`` rows: ``next()`` returns it.

    Epoch ``k`` visits ``permutation(seed_k)`` with ``seed_k`` the ``k``-th draw of
    :func:`epoch_seed` from ``rng`` (``arange(m)`` without ``shuffle``), in tiles of
    ``tile`` rows (see :func:`fastgd.sources.passes.permutation`). With
    ``prefetch`` (serial SGD, which keeps one core busy), the next epoch's permutation is
    built by the serial kernel on a background thread while the caller runs the current
    epoch: the kernel is compiled ``nogil``, so the two really run at once, and the
    result is the same permutation as without prefetching. Two buffers alternate, so
    memory is ``2 m`` int64. Use as a context manager (the thread is joined on exit).
    """

    def __init__(self, m, rng, shuffle, parallel, prefetch, tile=1):
        self.m, self.rng, self.shuffle, self.tile = m, rng, shuffle, tile
        self.prefetch = bool(prefetch and shuffle and m >= PREFETCH_MIN_ROWS)
        self.parallel = bool(parallel) and not self.prefetch
        self.buffers = [np.arange(m, dtype=np.int64)]
        self.pool = self.pending = None
        if self.prefetch:
            from concurrent.futures import ThreadPoolExecutor

            self.buffers.append(np.empty(m, dtype=np.int64))
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastgd-perm")
        self.turn = 0

    def _build(self, buf, seed):
        return permutation(self.m, seed, self.parallel, out=buf, tile=self.tile)

    def next(self):
        if not self.shuffle:
            return self.buffers[0]
        if not self.prefetch:
            return self._build(self.buffers[0], epoch_seed(self.rng))
        if self.pending is None:  # first epoch: nothing built ahead yet
            self._build(self.buffers[self.turn], epoch_seed(self.rng))
        else:
            self.pending.result()  # the buffer built during the previous epoch
        current = self.buffers[self.turn]
        self.turn ^= 1
        self.pending = self.pool.submit(self._build, self.buffers[self.turn], epoch_seed(self.rng))
        return current

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        return False


class _ArrayEpochs:
    """Epochs of the one in-memory block: :class:`Permutations` of its rows (or of the
    training rows ``rows[0]``, gathered into one buffer)."""

    def __init__(self, source, rng, shuffle, parallel, prefetch, rows):
        self.block = next(source._blocks())
        self.rows = None if rows is None else rows[0]
        tile = tile_rows(self.block.data) if shuffle else 1
        if tile > 1 and self.rows is not None:  # tiles of training rows next to each other
            self.rows = np.sort(self.rows)
        m = self.block.data.n if self.rows is None else self.rows.shape[0]
        self.perms = Permutations(m, rng, shuffle, parallel, prefetch, tile)
        self.buf = None if self.rows is None else np.empty(m, dtype=np.int64)

    def __enter__(self):
        self.perms.__enter__()
        return self

    def __exit__(self, *exc):
        return self.perms.__exit__(*exc)

    def skip(self):
        """One epoch's draws from the random stream (see :meth:`_BlockEpochs.skip`)."""
        self.perms.next()

    def next(self):
        perm = self.perms.next()
        if self.rows is not None:
            np.take(self.rows, perm, out=self.buf)
            perm = self.buf
        return [(self.block, perm)]
