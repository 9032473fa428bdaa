"""NumPy's own BLAS, callable from a Numba kernel: cblas_sgemm and cblas_dgemm by a fixed name.

    from npconv.fast import blas
    blas.AVAILABLE                   # True when NumPy's BLAS exports a 64-bit-integer cblas gemm
    blas.sgemm(...), blas.dgemm(...) # Numba externals: cblas_?gemm(order, transA, transB, M, N, K,
                                     #   alpha, A, lda, B, ldb, beta, C, ldc), integers int64

The fast tier's products split over threads run as a Numba `prange` on Numba's thread pool
(`gemm.split_product`), each block one BLAS call. A Numba kernel reaches a C function by the
name LLVM resolves at load time, so this module finds NumPy's BLAS library among those
loaded (threadpoolctl lists them), looks up its cblas gemm under the names the builds use,
and registers its address under a name of npconv's own (`npconv_cblas_sgemm`,
`npconv_cblas_dgemm`). The kernels call those names: their cached machine code holds no
address and no build's symbol name.

Only ILP64 builds are used (64-bit integers: NumPy's wheels' `scipy_openblas64_`, MKL's
`_64` names), so the kernels have one signature. With another BLAS (an LP64 build from
conda, say) AVAILABLE is False and `gemm` runs its blocks on npconv's Python pool instead.
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
from numba.core import types

# the names an ILP64 build exports cblas_?gemm under: NumPy's wheels, OpenBLAS's and MKL's own
_NAMES = ("scipy_cblas_{t}gemm64_", "cblas_{t}gemm64_", "cblas_{t}gemm_64")

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112    # CBLAS_ORDER and CBLAS_TRANSPOSE values


def _signature(real):
    i32, i64, ptr = types.int32, types.int64, types.voidptr
    return types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)


sgemm = types.ExternalFunction("npconv_cblas_sgemm", _signature(types.float32))
dgemm = types.ExternalFunction("npconv_cblas_dgemm", _signature(types.float64))


def _find() -> dict | None:
    """{"s": address, "d": address} of NumPy's BLAS's ILP64 cblas gemms, or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    for controller in ThreadpoolController().lib_controllers:
        if controller.user_api != "blas":
            continue
        try:
            library = ctypes.CDLL(controller.filepath)
        except OSError:
            continue
        for name in _NAMES:
            found = {t: getattr(library, name.format(t=t), None) for t in "sd"}
            if all(found.values()):
                return {t: ctypes.cast(f, ctypes.c_void_p).value for t, f in found.items()}
    return None


def _register() -> bool:
    found = _find()
    if found is None:
        return False
    llvm.add_symbol("npconv_cblas_sgemm", found["s"])
    llvm.add_symbol("npconv_cblas_dgemm", found["d"])
    return True


AVAILABLE = _register()
