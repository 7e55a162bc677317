"""How every compiled batch call runs: float overflow silent as in eager, and BLAS on a fixed number of threads."""

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

__all__ = ["BLAS_THREADS", "quietly"]

# BLAS threads during the executor's calls. Its matrices are small (a layer
# of a few dozen units times a batch): a second thread costs more than it
# saves, and on a busy machine a BLAS thread waiting for a core stalls every
# product (a 1347x64 @ 64x64 product took 3.6 ms with 2 threads under load,
# 0.56 ms with one). None leaves the library's own setting alone.
BLAS_THREADS = 1

_Method = TypeVar("_Method", bound=Callable[..., Any])


def quietly(method: _Method) -> _Method:
    """A batch call: float overflow gives inf and NaN silently, as Python floats
    do in eager mode, and BLAS runs with BLAS_THREADS threads."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        libraries = _blas_libraries() if BLAS_THREADS is not None else ()
        saved = [library.get_num_threads() for library in libraries]
        for library, threads in zip(libraries, saved):
            if threads != BLAS_THREADS:
                library.set_num_threads(BLAS_THREADS)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return method(*args, **kwargs)
        finally:
            for library, threads in zip(libraries, saved):
                if threads != BLAS_THREADS:
                    library.set_num_threads(threads)

    return cast(_Method, wrapper)  # the same signature (functools.wraps)


@functools.lru_cache(maxsize=1)
def _blas_libraries():
    """The thread controls of the BLAS libraries NumPy has loaded (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
