"""A software prefetch for the stochastic kernels: the one LLVM intrinsic fastgd uses.

Serial SGD visits rows in a random order, so every step starts with a cache miss on its
row of ``X`` and its ``y``. The steps form a dependency chain, and the out-of-order core
keeps only a few steps in flight: it waits for nearly every miss in turn. Measured on the
2-core reference machine, 10^7 steps, float64: with d = 10 the plain loop took 860 ms
(about 75 ns a row more than in row order), with ``prefetch`` of the row 16 steps ahead
375 ms; with d = 1, 285 ms and 204 ms. A prefetch is a hint: it never faults, changes no
value and retires at once, so results are bit-identical with and without it.

numba has no prefetch, so :func:`prefetch` is written with numba's public extension API
(:func:`numba.extending.intrinsic`) as a call to ``llvm.prefetch``.
"""
import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

#: rows ahead that the SGD kernels prefetch: 8 gained most of it, 16 to 32 were best and
#: equal (d = 1 and d = 10, 10^7 rows), 64 began to lose again.
PREFETCH_DISTANCE = 16

# The intrinsic is overloaded on the pointer type: ``llvm.prefetch.p0`` with opaque
# pointers (LLVM >= 17, llvmlite >= 0.45), ``llvm.prefetch.p0i8`` with the typed pointers
# of older LLVMs. LLVM also renames a mismatched declaration itself when it parses the IR.
_NAME = "llvm.prefetch.p0" if llvm.llvm_version_info[0] >= 17 else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint the CPU to load the cache line holding ``arr[idx]`` (1-D ``arr``) for reading.

    No bounds check, and none is needed: a prefetch of any address is harmless and
    changes nothing but timing. Nothing is returned.
    """
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _NAME)
        # read (0), high temporal locality (3), data cache (1)
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
