"""Fixtures shared by the test files.

``kernel_set``: every kernel set of :mod:`qsim_dist.kernels` (its ``KERNEL_SETS``), so that one
kernel test runs against each set, as qsim tests every simulator with one fixture. A set whose
optional dependency is not installed is skipped, with the reason; a set that fails to load for any
other reason (a CPU extension never built, a bug) fails. A new kernel set gets every kernel test
by its name in ``KERNEL_SETS`` and one line in :data:`KERNEL_SET_FACTS`, which the fixtures
``batch_rows``, ``sum_tol`` and ``random_cases`` read: the few ways the sets' promises differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from qsim_dist.kernels import KERNEL_SETS, get_kernels


@dataclass(frozen=True)
class KernelSetFacts:
    """What the kernel tests must know of a set beyond the common interface."""

    batch_rows: Callable[[int], int]  # how many rows its batch of ``count`` trajectory rows has
    double_sums: bool  # sums over a complex64 state (probabilities, marginals, expectations,
    #                    sampling's cumulative sums) are accumulated in double precision
    random_share: float  # the share of the randomized cases it can afford in a unit-test run


SINGLE_PRECISION_TOL = 2e-5  # a sum accumulated in complex64's own precision

KERNEL_SET_FACTS = {
    # kernels/__init__.py: batches are "a power of two, or for the CPU set whole tiles of 64";
    # the JAX set computes in the state's precision, and compiles each (shape, qubits) once
    # (~30 ms), so it runs a tenth of the randomized cases
    "cpu": KernelSetFacts(batch_rows=lambda count: -(-count // 64) * 64, double_sums=True,
                          random_share=1.0),
    "jax": KernelSetFacts(batch_rows=lambda count: 1 << (count - 1).bit_length(),
                          double_sums=False, random_share=0.1),
}


@pytest.fixture(params=KERNEL_SETS)
def kernel_set(request):
    """The kernel set class (``K.apply_dense(state, K.prepare_matrix(m, dtype), qubits)``...)."""
    name = request.param
    try:
        return get_kernels(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "qsim_dist":
            raise  # the package's own module missing is a broken install, not an option
        pytest.skip(f"kernel set '{name}' needs {exc.name}, which is not installed")


def _facts(kernel_set) -> KernelSetFacts:
    if kernel_set.name not in KERNEL_SET_FACTS:
        pytest.fail(f"kernel set '{kernel_set.name}' has no line in KERNEL_SET_FACTS "
                    f"(tests/conftest.py)")
    return KERNEL_SET_FACTS[kernel_set.name]


@pytest.fixture
def batch_rows(kernel_set) -> Callable[[int], int]:
    """``batch_rows(count)``: how many rows the set's batch of ``count`` trajectory rows has."""
    return _facts(kernel_set).batch_rows


@pytest.fixture
def sum_tol(kernel_set) -> Callable[[float, type], float]:
    """``sum_tol(tol, dtype)``: the tolerance of a sum read from a state of ``dtype``: ``tol``
    where the set accumulates in double (or the state is complex128), else at least
    :data:`SINGLE_PRECISION_TOL`."""
    double = _facts(kernel_set).double_sums
    return lambda tol, dtype: (tol if double or np.dtype(dtype) == np.complex128
                               else max(tol, SINGLE_PRECISION_TOL))


@pytest.fixture
def random_cases(kernel_set) -> Callable[[int], int]:
    """``random_cases(count)``: how many of ``count`` randomized cases to run on this set (the
    first ones of the same seeded sequence)."""
    share = _facts(kernel_set).random_share
    return lambda count: max(1, round(count * share))
