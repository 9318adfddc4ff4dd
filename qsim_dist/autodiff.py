"""Expectation values as pure JAX functions of a circuit's gate parameters (jit, grad, vmap).

A parametrised circuit is an ordinary :class:`~qsim_dist.circuit.Circuit`: its parameters are the
gate parameters of its instructions, in instruction order, and the numbers written in it are
only where it stands now (:func:`parameters` lists them). ``expectation_fn(circuit, observable)``
gives ``f(params)``, the expectation value with every gate parameter replaced by ``params``; tie
or fix parameters by composing, e.g. ``f(jnp.repeat(theta, 2))`` or ``f(base.at[k].set(t))``::

    >>> import jax
    >>> from qsim_dist import Circuit
    >>> from qsim_dist.autodiff import expectation_fn, parameters
    >>> c = Circuit(1).add("rx", 0, params=[0.0])
    >>> f = expectation_fn(c, "Z")                 # f([t]) = <Z> after rx(t) = cos(t)
    >>> round(float(jax.grad(f)(parameters(c) + 0.5)[0]), 5)  # -sin(0.5)
    -0.47943

The gate table builds every matrix from the traced parameters (``GateSpec.matrix(params,
xp=JAX_OPS)``, no ``float()`` on the way), so ``f`` is one JAX function that ``jax.jit``,
``jax.grad`` and ``jax.vmap`` accept. Its gradient is the **adjoint method** (:class:`Adjoint`,
a ``jax.custom_vjp``): the circuit as blocks (:func:`plan`: a run of one-qubit gates is one
block, a controlled gate a 2 x 2 pass where its controls read 1, a diagonal gate a phase table),
one forward sweep, ``H psi`` once, one backward sweep that un-applies each block from both
states and reads its matrix's cotangent from one overlap of the two; JAX takes it through the
small matrices to the parameters. On the CPU the sweeps of 14 qubits and more run on the
compiled kernels (:mod:`qsim_dist.kernels.cpu`, through ``jax.pure_callback``), the rest on the
JAX kernels (:mod:`qsim_dist.kernels.jax_xla`, what a GPU runs). ``gradient="backprop"`` differentiates the
JAX kernels themselves instead (forward mode and higher derivatives too);
:func:`statevector_fn` gives the state as such a function. Both read a circuit as
``Backend.expectation`` does: its unconditioned gates (measurements, resets and barriers are
left out). They are double precision when JAX's ``jax_enable_x64`` is on, single otherwise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import validation as check
from .circuit import Circuit, Instruction
from .errors import CircuitError
from .gates import ArrayOps, GateSpec, gate_spec
from .kernels import jax_xla
from .observables import PauliSum, as_pauli_sum, pauli_phase

JAX_OPS = ArrayOps.of(jnp, is_traced=lambda value: isinstance(value, jax.core.Tracer))


def _gates(circuit: Circuit) -> list[Instruction]:
    # what Backend.expectation evolves the state by
    return [inst for inst in circuit if inst.is_gate and not inst.condition]


def _circuit(circuit: Any) -> Circuit:
    if not isinstance(circuit, Circuit):
        raise CircuitError(f"expected a Circuit, got {check.describe(circuit)}")
    return circuit


def parameters(circuit: Circuit) -> np.ndarray:
    """The gate parameters of ``circuit`` in instruction order (float64): the point at which the
    function of :func:`expectation_fn` is the circuit's own expectation value."""
    return np.array([p for inst in _gates(_circuit(circuit)) for p in inst.params],
                    dtype=np.float64)


def _checked(params: Any, count: int) -> jax.Array:
    """``params`` as a JAX vector of ``count`` reals; a concrete one must be finite (a tracer's
    values are not known while tracing, only its shape and dtype)."""
    try:
        values = jnp.asarray(params)
    except (TypeError, ValueError):
        raise CircuitError(f"params must be {count} real number(s), got "
                           f"{check.describe(params)}") from None
    if values.shape != (count,) or values.dtype.kind not in ("f", "i", "u"):
        raise CircuitError(f"params must be a vector of {count} real number(s), got shape "
                           f"{values.shape}, dtype {values.dtype}")
    if values.dtype.kind != "f":
        values = values.astype(float)
    if not isinstance(values, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(values))):
        raise CircuitError(f"params must be finite real numbers, got {check.describe(params)}")
    return values


def _evolution(circuit: Circuit) -> tuple[int, Callable[[jax.Array], jax.Array]]:
    """How many parameters ``circuit`` has, and ``evolve(values)``: its state from |0...0> with
    those gate parameters, a JAX function (not yet jitted) of a checked vector."""
    steps = []  # (gate, qubits, index of its first parameter in the vector)
    count = 0
    for inst in _gates(_circuit(circuit)):
        spec = gate_spec(inst.name)
        steps.append((spec, inst.qubits, count))
        count += spec.num_params
    num_qubits = circuit.num_qubits

    def evolve(values):
        state = jax_xla.zero_state(num_qubits, complex)  # complex128 under jax_enable_x64
        for spec, qubits, first in steps:
            m = spec.matrix(tuple(values[first + j] for j in range(spec.num_params)), xp=JAX_OPS)
            if spec.diagonal:
                state = jax_xla.apply_diagonal(state, jnp.diagonal(m), qubits)
            else:
                state = jax_xla.apply_dense(state, m, qubits)
        return state

    return count, evolve


def _public(count: int, fn: Callable[[jax.Array], jax.Array]) -> Callable[[Any], jax.Array]:
    # One jit around the whole function: the kernels donate their state buffer, which a grad
    # outside any jit would still need for its backward pass; inside a jit XLA owns the buffers.
    # The parameters are checked outside it, where a concrete vector can still be read.
    jitted = jax.jit(fn)
    return lambda params: jitted(_checked(params, count))


def statevector_fn(circuit: Circuit) -> Callable[[Any], jax.Array]:
    """``f(params)``: the statevector (little-endian, as ``Backend.statevector``) of ``circuit``
    from ``|0...0>`` with its gate parameters replaced by the vector ``params``
    (:func:`parameters` order); a pure JAX function, as :func:`expectation_fn`."""
    return _public(*_evolution(circuit))


# ---- the adjoint method ---------------------------------------------------------------------

Step = tuple[GateSpec, tuple[int, ...], int]  # a gate, its qubits, its first parameter's index


@dataclass(frozen=True)
class Block:
    """One pass over the state in the sweeps of the adjoint method.

    ``kind`` is ``"dense"`` (a ``2^k x 2^k`` matrix on the sorted ``qubits``, bit j of its index
    ``qubits[j]``), ``"diagonal"`` (a table of ``2^k`` phases on them) or ``"controlled"`` (a
    ``2 x 2`` matrix on the one qubit of ``qubits``, applied where the ``controls`` all read 1).
    ``steps`` are the gates it is made of, in time order; ``constant`` its matrix when none of
    them has a parameter."""

    kind: str
    qubits: tuple[int, ...]
    controls: tuple[int, ...]
    steps: tuple[Step, ...]
    constant: np.ndarray | None = field(default=None, repr=False)

    @property
    def trainable(self) -> bool:
        return self.constant is None


@functools.lru_cache(maxsize=None)
def controlled_target(name: str) -> int | None:
    """The position of the one qubit that gate ``name`` acts on where all its other qubits read
    1 (it is the identity elsewhere, whatever its parameters), or None: ``cx``, ``crx``,
    ``cu``, ``ccx``, ``c3sqrtx`` ... yes; diagonal gates (applied as phase tables), ``swap``,
    ``rzx`` no. Read from the matrix at two parameter points (the entries are trigonometric
    polynomials of the parameters); ``tests/test_adjoint.py`` checks every table gate at more."""
    spec = gate_spec(name)
    k = spec.num_qubits
    if k < 2 or spec.diagonal:
        return None
    rng = np.random.default_rng(7)
    samples = [spec.matrix(tuple(rng.uniform(-np.pi, np.pi, spec.num_params)))
               for _ in range(2)]
    for p in range(k):
        on = ((1 << k) - 1) & ~(1 << p)  # every other position reads 1
        block = [on, on | 1 << p]
        rest = [i for i in range(1 << k) if i not in block]
        want = np.eye(1 << k)
        if all(np.allclose(np.delete(m, block, axis=0), np.delete(want, block, axis=0),
                           rtol=0, atol=1e-12) and
               np.allclose(m[np.ix_(block, rest)], 0, rtol=0, atol=1e-12) for m in samples):
            return p
    return None


def plan(circuit: Circuit) -> tuple[list[Block], int]:
    """The blocks that the adjoint method sweeps ``circuit``'s gates with, and its parameter
    count: each run of one-qubit gates on a qubit (between gates on more qubits) is one block
    (dense, or diagonal when all of its gates are), each gate on more qubits one block of its
    own (diagonal, controlled or dense, in that order of preference). A run is placed just
    before the next gate on its qubit, which only moves it past gates on other qubits."""
    blocks: list[Block] = []
    pending: dict[int, list[Step]] = {}
    count = 0

    def flush(q: int) -> None:
        steps = pending.pop(q, None)
        if steps:
            diagonal = all(spec.diagonal for spec, _, _ in steps)
            blocks.append(_block("diagonal" if diagonal else "dense", (q,), (), tuple(steps)))

    for inst in _gates(_circuit(circuit)):
        spec = gate_spec(inst.name)
        step = (spec, inst.qubits, count)
        count += spec.num_params
        if spec.name == "id":
            continue
        if len(inst.qubits) == 1:
            pending.setdefault(inst.qubits[0], []).append(step)
            continue
        for q in inst.qubits:
            flush(q)
        target = controlled_target(spec.name)
        if spec.diagonal:
            blocks.append(_block("diagonal", tuple(sorted(inst.qubits)), (), (step,)))
        elif target is not None:
            blocks.append(_block("controlled", (inst.qubits[target],),
                                 tuple(sorted(q for q in inst.qubits
                                              if q != inst.qubits[target])), (step,)))
        else:
            blocks.append(_block("dense", tuple(sorted(inst.qubits)), (), (step,)))
    for q in sorted(pending):
        flush(q)
    return blocks, count


def _block(kind: str, qubits, controls, steps) -> Block:
    block = Block(kind, qubits, controls, steps)
    if all(spec.num_params == 0 for spec, _, _ in steps):
        block = Block(kind, qubits, controls, steps, block_matrix(block, None))
    return block


def block_matrix(block: Block, values: Any) -> Any:
    """``block``'s matrix (dense, controlled) or table (diagonal) with the gate parameters
    ``values`` (a JAX vector of the circuit's parameters, traced or not; None for a block
    without parameters: numpy)."""
    return _local_matrix(block, None if values is None else
                         [values[first + j] for spec, _, first in block.steps
                          for j in range(spec.num_params)])


def _local_matrix(block: Block, params: Any) -> Any:
    # block_matrix from the block's own parameters, in step order (vmapped over a family)
    if params is None:
        xp, gates = np, [spec.matrix(()) for spec, _, _ in block.steps]
    else:
        xp, gates, k = jnp, [], 0
        for spec, _, _ in block.steps:
            gates.append(spec.matrix(tuple(params[k:k + spec.num_params]), xp=JAX_OPS))
            k += spec.num_params
    if len(block.qubits) == 1 and not block.controls:  # a run of one-qubit gates
        m = None
        for g in gates:
            g = xp.diagonal(g) if block.kind == "diagonal" else g
            m = g if m is None else (g * m if block.kind == "diagonal" else g @ m)
        return m
    (spec, gq, _), = block.steps
    m, = gates
    k = len(gq)
    if block.kind == "controlled":
        p = gq.index(block.qubits[0])
        on = ((1 << k) - 1) & ~(1 << p)
        idx = np.array([on, on | 1 << p])
        return m[idx[:, None], idx[None, :]]
    # gate order (bit j = gq[j]) to sorted order: axis a of the (2,)*k tensor is bit k-1-a
    order = [gq.index(q) for q in block.qubits]  # sorted bit i is gate bit order[i]
    axes = [k - 1 - order[k - 1 - a] for a in range(k)]
    if block.kind == "diagonal":
        return xp.diagonal(m).reshape((2,) * k).transpose(axes).reshape(-1)
    return m.reshape((2,) * (2 * k)).transpose(axes + [a + k for a in axes]) \
        .reshape(1 << k, 1 << k)


def _shape_of(block: Block) -> tuple:
    # what _local_matrix does with a block's parameters: blocks alike share one vmapped build
    return (block.kind, len(block.qubits), tuple(spec.name for spec, _, _ in block.steps),
            tuple(tuple(gq.index(q) for q in block.qubits + block.controls)
                  for _, gq, _ in block.steps if len(gq) > 1))


def _dagger(block: Block, m):
    return m.conj() if block.kind == "diagonal" else m.conj().T


def _apply(K, state, block: Block, m, dtype):
    prepared = K.prepare_matrix(m, dtype)
    if block.kind == "diagonal":
        return K.apply_diagonal(state, prepared, block.qubits)
    if block.kind == "controlled":
        return K.apply_controlled(state, prepared, block.qubits[0], block.controls)
    return K.apply_dense(state, prepared, block.qubits)


def _overlap(K, bra, ket, block: Block):
    if block.kind == "diagonal":
        return K.overlap_diagonal(bra, ket, block.qubits)
    return K.overlap(bra, ket, block.qubits, block.controls)


def pauli_groups(h: PauliSum) -> tuple[tuple[int, tuple[int, ...], tuple[float, ...]], ...]:
    """The Hermitian part of ``h`` as strings grouped by X part, what the kernels'
    ``apply_pauli_sum`` takes: ``(x_mask, z_masks, coefficients)``, each coefficient times the
    string's phase ``(-i)^#Y`` (so complex where the string has Y's), repeated strings summed,
    zero ones dropped. ``Re <psi|h|psi>`` is ``<psi|H|psi>`` with ``H`` this Hermitian part."""
    terms: dict[tuple[int, int], float] = {}
    for c, x, z in h.terms:
        terms[(x, z)] = terms.get((x, z), 0.0) + complex(c).real
    groups: dict[int, list[tuple[int, complex]]] = {}
    for (x, z), c in terms.items():
        if c:
            groups.setdefault(x, []).append((z, c * pauli_phase(x, z)))
    return tuple((x, tuple(z for z, _ in zs), tuple(c for _, c in zs))
                 for x, zs in sorted(groups.items()))


class Adjoint:
    """The adjoint method on a kernel set ``K`` for one circuit (its :func:`plan`) and one
    observable (its :func:`pauli_groups`).

    Forward: ``psi`` = the blocks on ``|0...0>``, ``lam = H psi``, ``E = Re <psi|lam>``.
    Backward, block ``b`` from the last: ``psi <- U_b^dagger psi`` (the state before ``b``), then
    for a trainable block ``X_b = overlap(lam, psi)`` (``<lam|M|psi> = sum(M * X_b)``), then
    ``lam <- U_b^dagger lam``. Since ``dE = 2 Re <lam_b| dU_b |psi_(b-1)> = 2 Re sum(dU_b * X_b)``,
    the cotangent of ``U_b`` (JAX's convention for a real function of a complex input) is
    ``2 X_b``; JAX carries it through the small matrices to the gate parameters. Two states and
    a few passes per block, whatever the number of parameters.

    The trainable blocks' matrices travel as *families*: blocks of one shape (the same gates in
    the same arrangement: every ``ry, rz`` run of an ansatz) are built by one vmapped function
    into one stacked array, so that the compiled program stays small however deep the circuit.
    """

    def __init__(self, blocks: Sequence[Block], groups, num_qubits: int):
        self.blocks = tuple(blocks)
        self.groups = groups
        self.num_qubits = num_qubits
        self.first = next((i for i, b in enumerate(self.blocks) if b.trainable),
                          len(self.blocks))
        families: dict[tuple, list[int]] = {}
        for i, b in enumerate(self.blocks):
            if b.trainable:
                families.setdefault(_shape_of(b), []).append(i)
        # (block indices, their parameters' indices: one row per block)
        self.families = [(members, np.array([[first + j for spec, _, first in
                                              self.blocks[i].steps
                                              for j in range(spec.num_params)]
                                             for i in members], dtype=np.int64))
                         for members in families.values()]
        self.where = {}  # block index -> (family, row)
        for f, (members, _) in enumerate(self.families):
            for r, i in enumerate(members):
                self.where[i] = (f, r)

    def matrices(self, values, dtype) -> tuple:
        """The families' stacked matrices for the parameter vector ``values`` (JAX)."""
        out = []
        for members, index in self.families:
            template = self.blocks[members[0]]
            build = jax.vmap(functools.partial(_local_matrix, template))
            out.append(build(values[jnp.asarray(index, dtype=jnp.int32)]).astype(dtype))
        return tuple(out)

    def _matrices(self, mats) -> list:
        return [b.constant if b.constant is not None else mats[self.where[i][0]][self.where[i][1]]
                for i, b in enumerate(self.blocks)]

    def parts(self, K, mats, dtype):
        """``(E, psi, lam)`` for the families' matrices ``mats``."""
        psi = K.zero_state(self.num_qubits, dtype)
        for b, m in zip(self.blocks, self._matrices(mats)):
            psi = _apply(K, psi, b, m, dtype)
        lam = K.apply_pauli_sum(psi, self.groups)
        return K.inner(psi, lam).real, psi, lam

    def backward(self, K, mats, psi, lam, dtype, stack) -> tuple:
        """``X_b`` of the trainable blocks, stacked by family (``stack``: np.stack or
        jnp.stack); ``psi`` and ``lam`` are consumed."""
        xs = {}
        pairs = list(zip(self.blocks, self._matrices(mats)))
        for i in range(len(pairs) - 1, self.first - 1, -1):
            b, m = pairs[i]
            dagger = _dagger(b, m)
            psi = _apply(K, psi, b, dagger, dtype)
            if b.trainable:
                xs[i] = _overlap(K, lam, psi, b)
            if i > self.first:
                lam = _apply(K, lam, b, dagger, dtype)
        return tuple(stack([xs[i] for i in members]) for members, _ in self.families)


def _host_energy(engine: Adjoint, cdtype) -> Callable:
    """``energy(mats)``: ``E`` by the compiled CPU kernels through ``jax.pure_callback``, with
    the adjoint method as its ``custom_vjp``."""
    from .kernels.cpu import CpuKernels as K

    rdtype = np.float64 if cdtype == np.complex128 else np.float32
    scalar = jax.ShapeDtypeStruct((), rdtype)
    state = jax.ShapeDtypeStruct((1 << engine.num_qubits,), cdtype)

    def value(*mats):
        return np.asarray(engine.parts(K, mats, cdtype)[0], dtype=rdtype)

    def parts(*mats):
        e, psi, lam = engine.parts(K, mats, cdtype)
        return np.asarray(e, dtype=rdtype), psi, lam

    def back(psi, lam, *mats):  # the arguments are read-only views of JAX's buffers
        xs = engine.backward(K, mats, np.array(psi), np.array(lam), cdtype, np.stack)
        return tuple(np.asarray(x, dtype=cdtype) for x in xs)

    @jax.custom_vjp
    def energy(mats):
        return jax.pure_callback(value, scalar, *mats, vmap_method="sequential")

    def fwd(mats):
        e, psi, lam = jax.pure_callback(parts, (scalar, state, state), *mats,
                                        vmap_method="sequential")
        return e, (mats, psi, lam)

    def bwd(res, ct):
        mats, psi, lam = res
        if not mats:
            return ((),)
        shapes = tuple(jax.ShapeDtypeStruct(m.shape, cdtype) for m in mats)
        xs = jax.pure_callback(back, shapes, psi, lam, *mats, vmap_method="sequential")
        return (tuple((2 * ct) * x for x in xs),)

    energy.defvjp(fwd, bwd)
    return energy


def _jax_energy(engine: Adjoint, cdtype) -> Callable:
    """``energy(mats)`` as :func:`_host_energy`, in JAX (the JAX kernel set: a GPU's path)."""
    K = jax_xla.JaxKernels

    @jax.custom_vjp
    def energy(mats):
        return engine.parts(K, mats, cdtype)[0]

    def fwd(mats):
        e, psi, lam = engine.parts(K, mats, cdtype)
        return e, (mats, psi, lam)

    def bwd(res, ct):
        mats, psi, lam = res
        xs = engine.backward(K, mats, psi, lam, cdtype, jnp.stack) if mats else ()
        return (tuple((2 * ct) * x.astype(cdtype) for x in xs),)

    energy.defvjp(fwd, bwd)
    return energy


#: From this many qubits on, ``kernels="auto"`` sweeps on the compiled CPU kernels when JAX runs
#: on the CPU; below, calling out of XLA for every block costs more than the blocks themselves
#: (value_and_grad of benchmarks/gradients.py's ansatz, 5 layers, one thread: 10 qubits 8.9 ms
#: on cpu, 1.1 ms on jax; 14: 17.5 / 18.8 ms; 16: 49 / 118 ms; 20: 0.64 / 4.6 s).
HOST_FROM_QUBITS = 14


def _kernel_set(kernels: str, num_qubits: int) -> str:
    if kernels not in ("auto", "cpu", "jax"):
        raise CircuitError(f"kernels must be 'auto', 'cpu' or 'jax', got {kernels!r}")
    if kernels != "auto":
        return kernels
    if jax.default_backend() != "cpu" or num_qubits < HOST_FROM_QUBITS:
        return "jax"
    try:
        from .kernels import cpu  # noqa: F401  (the compiled extension)
    except ImportError:
        return "jax"
    return "cpu"


def expectation_fn(circuit: Circuit, observable: PauliSum | str | Sequence, *,
                   gradient: str = "adjoint", kernels: str = "auto"
                   ) -> Callable[[Any], jax.Array]:
    """``f(params)``: the real expectation value ``<psi(params)|H|psi(params)>`` of the Hermitian
    Pauli sum ``observable`` (as :func:`qsim_dist.observables.as_pauli_sum` reads it), where
    ``psi(params)`` is ``circuit`` from ``|0...0>`` with its gate parameters replaced by the
    vector ``params`` (:func:`parameters` order). ``f`` is a pure JAX function: ``jax.jit``,
    ``jax.grad`` and ``jax.vmap`` (over a batch of parameter vectors) accept it.

    ``gradient="adjoint"`` (the default): reverse-mode derivatives by the adjoint method
    (:class:`Adjoint`, a ``jax.custom_vjp``): one forward sweep, one backward sweep, two states
    in memory, on ``kernels`` ``"cpu"`` (the compiled kernels, through ``jax.pure_callback``),
    ``"jax"`` (XLA, also on a GPU) or ``"auto"`` (cpu when JAX runs on the CPU and the circuit
    has :data:`HOST_FROM_QUBITS` qubits or more, jax otherwise). It gives first
    derivatives in reverse mode (``grad``, ``value_and_grad``, ``vjp``, ``jacrev``).
    ``gradient="backprop"``: JAX differentiates the JAX kernels themselves (every intermediate
    state kept), which also gives forward mode (``jvp``, ``jacfwd``) and higher derivatives."""
    h = as_pauli_sum(observable, _circuit(circuit).num_qubits)
    if gradient == "backprop":
        if kernels not in ("auto", "jax"):
            raise CircuitError("gradient='backprop' runs on the JAX kernels (kernels='jax')")
        return _backprop_expectation(circuit, h)
    if gradient != "adjoint":
        raise CircuitError(f"gradient must be 'adjoint' or 'backprop', got {gradient!r}")
    blocks, count = plan(circuit)
    engine = Adjoint(blocks, pauli_groups(h), circuit.num_qubits)
    make = _host_energy if _kernel_set(kernels, circuit.num_qubits) == "cpu" else _jax_energy
    energies: dict = {}

    def expectation(values):
        cdtype = np.dtype(np.complex128 if values.dtype == jnp.float64 else np.complex64)
        if cdtype not in energies:
            energies[cdtype] = make(engine, cdtype)
        return energies[cdtype](engine.matrices(values, cdtype))

    return _public(count, expectation)


def qasm_expectation_fn(source: str, observable: PauliSum | str | Sequence, **options
                        ) -> tuple[Callable[[Any], jax.Array], list[str]]:
    """``(f, names)`` for an OpenQASM 3 program with ``input float`` / ``input angle``
    parameters: ``f(values)`` is :func:`expectation_fn` of the program with its inputs set to
    ``values`` (in the order of ``names``, the declaration order), as pure a JAX function.
    The gate parameters must be affine in the inputs (``theta``, ``2*theta + pi/4``,
    ``-phi/2``...): the map is read off the program at zero and at each unit vector and
    checked at a random point; a program whose gates or parameters depend on its inputs in any
    other way is refused in one line. ``options`` go to :func:`expectation_fn`."""
    from .io.qasm import input_names, loads

    names = input_names(source)
    if not names:
        raise CircuitError("the program declares no input parameters (use expectation_fn on "
                           "its circuit)")

    def at(values) -> tuple[Circuit, np.ndarray]:
        c = loads(source, inputs=dict(zip(names, (float(v) for v in values))))
        return c, parameters(c)

    def layout(c: Circuit) -> list:
        return [(i.name, i.qubits) for i in _gates(c)]

    k = len(names)
    base, b = at(np.zeros(k))
    shape = layout(base)
    columns = []
    for j in range(k):
        c, p = at(np.eye(k)[j])
        if layout(c) != shape:
            raise CircuitError(f"the program's gates depend on input {names[j]} (only its gate "
                               "parameters may)")
        columns.append(p - b)
    a = np.stack(columns, axis=1) if b.size else np.zeros((0, k))
    probe = np.random.default_rng(0).uniform(-2, 2, size=k)
    c, p = at(probe)
    if layout(c) != shape or \
            not np.allclose(p, b + a @ probe, atol=1e-9):
        raise CircuitError("a gate parameter depends non-linearly on the inputs (supported: "
                           "affine expressions such as 2*theta + pi/4)")
    energy = expectation_fn(base, observable, **options)

    def f(values):
        values = jnp.asarray(values)
        dtype = values.dtype if jnp.issubdtype(values.dtype, jnp.floating) else jnp.float64
        return energy(jnp.asarray(b, dtype) + jnp.asarray(a, dtype) @ values.astype(dtype))

    return f, names


def _backprop_expectation(circuit: Circuit, h: PauliSum) -> Callable[[Any], jax.Array]:
    count, evolve = _evolution(circuit)

    def expectation(values):
        state = evolve(values)
        # the kernel's sum leaves out the string's constant phase (-i)^#Y
        total = sum(c * pauli_phase(x, z) * jax_xla.pauli_expectation(state, x, z)
                    for c, x, z in h.terms)
        return jnp.real(total)

    return _public(count, expectation)
