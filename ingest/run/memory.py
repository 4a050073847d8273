"""Giving memory back to the system: a long-running service whose peak was one large page or
one large poll should not keep that peak for months."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None  # glibc only


def release_freed_memory() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``): memory Python and
    libxml2 freed stays in the process otherwise. A no-op where there is no glibc."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)


def then_release(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, then :func:`release_freed_memory`: for a worker's large transient work (learning
    the model from a window of 10,000 pages peaks ~100 MB above the worker's usual size, which
    glibc would otherwise keep until the worker exits)."""
    try:
        return fn(*args)
    finally:
        release_freed_memory()
