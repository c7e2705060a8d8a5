"""Chunk layouts: functions of the problem size only, never of the thread count."""
from ._config import CHUNK_ROWS, MOMENT_CHUNK_BYTES

#: rows per block of the moments pass (each block merges cache-sized sub-chunks).
MOMENT_BLOCK_ROWS = 1 << 16

#: number of independent parts in the parallel (parameter-mixing) stochastic modes.
#: Fixed, so a seed gives the same result on any number of threads.
MIX_PARTS = 8
#: a part never has fewer rows than this (small data gets fewer parts).
MIX_MIN_ROWS = 1024


def n_chunks(n):
    """Number of chunks of the streaming passes over ``n`` rows."""
    return max(1, -(-n // CHUNK_ROWS))


#: the per-chunk rows of a CSR pass (``d + 2`` gradient sums, or the moments of ``[x, y]``)
#: hold at most about this many values in all: a chunk's gradient is dense over the
#: columns, so at 2^18 columns 16 chunks (32 MB) serve any number of rows, the memory
#: of the pass staying O(d), not O(n d / CHUNK_ROWS)
CSR_PARTIAL_VALUES = 1 << 22


def csr_chunks(n, width):
    """Number of chunks of a CSR pass over ``n`` rows whose per-chunk row has ``width``
    values: :func:`n_chunks`, bounded by :data:`CSR_PARTIAL_VALUES` (a function of the
    problem's size only: serial and parallel passes cut the rows alike)."""
    return max(1, min(n_chunks(n), CSR_PARTIAL_VALUES // max(width, 1)))


def moment_layout(n, d):
    """``(n_blocks, sub_rows)`` of the moments pass for an ``(n, d)`` problem."""
    sub_rows = max(64, MOMENT_CHUNK_BYTES // (8 * (d + 2)))
    block = max(sub_rows, MOMENT_BLOCK_ROWS)
    return max(1, -(-n // block)), sub_rows


def mix_parts(n):
    """Number of parameter-mixing parts for ``n`` rows (1 means plain serial SGD)."""
    return max(1, min(MIX_PARTS, n // MIX_MIN_ROWS))


#: permutation buckets: about this many entries each (they must stay in L2), at most 1024.
PERM_BUCKET_ROWS = 8192
PERM_MAX_BUCKETS = 1024
#: index ranges of the permutation's counting/scatter passes.
PERM_CHUNK_ROWS = 1 << 17
PERM_MAX_CHUNKS = 64


def perm_layout(n):
    """``(n_buckets, n_chunks)`` of the compiled permutation of ``n`` entries."""
    buckets = max(1, min(PERM_MAX_BUCKETS, n // PERM_BUCKET_ROWS))
    chunks = max(1, min(PERM_MAX_CHUNKS, n // PERM_CHUNK_ROWS))
    return buckets, chunks


#: the BLAS co-moments pass (:mod:`fastgd.kernels.gram`): a slice's float64 scratch holds
#: about this many values (8 MB: its second reading, the centring, comes from the cache)
GRAM_SLICE_VALUES = 1 << 20
#: a slice has at least this many rows, at most the next: each slice adds its
#: ``(d + 1)^2`` co-moment to its block's, which costs about what BLAS spends on 100 rows
GRAM_MIN_SLICE_ROWS = 1024
GRAM_MAX_SLICE_ROWS = 8192
#: rows per block (a task of the parallel pass), and at most this many blocks: each holds
#: its co-moment until the blocks are merged in order, so the pass holds at most
#: ``2 * GRAM_MAX_BLOCKS`` matrices of ``(d + 1)^2`` (the blocks', and the products of
#: the blocks running), whatever ``n``
GRAM_BLOCK_ROWS = 1 << 16
GRAM_MAX_BLOCKS = 8
#: ... and at most about this many values a block: wide rows make smaller blocks, so that
#: the pass has blocks for every thread (5 10^4 x 1000 rows were one block of 65,536
#: rows, one thread: 1.17 s; in 8 blocks on 2 threads 0.5 s) ...
GRAM_BLOCK_VALUES = 1 << 22
#: ... and a pass of more rows than one slice is cut into about this many blocks at least,
#: so that small data also keeps the threads busy (2 10^4 x 200, one block: 30.6 ms; in 4
#: blocks of a slice each on 2 threads 15.7 ms, the normal equations' BLAS 13.6 ms) ...
GRAM_MIN_BLOCKS = 4
#: ... as long as the blocks' co-moments, held until the merge, take at most this many
#: bytes (or 2 blocks): at d = 5000 a co-moment is 200 MB
GRAM_BLOCKS_BYTES = 1 << 29


def gram_layout(n, d):
    """``(n_blocks, slice_rows)`` of the BLAS co-moments pass over ``n`` rows of ``d``
    features."""
    k = d + 1
    rows = min(GRAM_MAX_SLICE_ROWS, max(GRAM_MIN_SLICE_ROWS, GRAM_SLICE_VALUES // (k + 1)))
    block = max(rows, min(GRAM_BLOCK_ROWS, GRAM_BLOCK_VALUES // k, -(-n // GRAM_MIN_BLOCKS)))
    cap = max(2, GRAM_BLOCKS_BYTES // (8 * k * k))
    n_blocks = max(1, min(GRAM_MAX_BLOCKS, cap, -(-n // block)))
    return n_blocks, rows
