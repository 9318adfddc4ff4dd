"""Node programs on MPI ranks: each program runs only on the rank that owns its node.

Under ``mpiexec -n P`` every rank keeps the same event loop, runtime and state bookkeeping
(:mod:`.nodes`, :mod:`.runtime` and, for ``modulenet``, the forest of module tensors, whose
amplitudes live only on each module's owner). What differs is where a program's own code runs:
only on the owner of its node. When the loop wakes a node, its owner advances the generator
and records every operation the program asks of its :class:`NodeView` (a gate, a measurement,
a message, a read, a coin...), and broadcasts that record; every other rank replays it on its
own view, so that its copy of the runtime takes the same steps, and resumes from the same
futures. A ``read`` is broadcast *before* it is answered: answering it advances the shot's
state, which the ranks do together (a module's owner computes, the others follow its shape).

So a program's Python state, its branches and its side effects exist once, on one rank; the
values it sends (heralds, choices) and the bits it reads reach the other ranks inside the
record. One global event order (the single process's) is kept, which is why a seed gives the
same report at any number of ranks; the ranks do not run ahead of one another in simulated
time (no conservative windows: that is the open part, see ``docs/architecture.md``).

A program's return value reaches the other ranks when it is made of qubits, bits, numbers,
strings and containers of them; anything else is known on the owner only (None elsewhere).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..errors import QsimDistError
from .nodes import Future, NodeView, _locate, _wrapped, start_program
from .program import ProgramError
from .runtime import Bit, Qubit

# what a record chunk says after its calls
_CALLS, _YIELD, _STOP, _ERROR = "calls", "yield", "stop", "error"
# NodeView methods that change the run (everything else only looks)
_ACTIONS = ("qubit", "gate", "correct", "measure", "reset", "free", "send", "recv", "epr",
            "read", "random", "wait")


class ProgramRanks:
    """Which rank runs each node's program (``owner[node]``), and the communicator
    (:class:`qsim_dist.comm.Comm`) that carries the records."""

    def __init__(self, comm, owner: Mapping[str, int]):
        self.comm, self.owner, self.rank = comm, dict(owner), comm.rank

    def start(self, name: str, program: Callable, sim) -> tuple[NodeView, Any]:
        """The view and the generator of node ``name``'s program on this rank: the program
        itself on its owner, a replay of the owner's records elsewhere."""
        root = self.owner[name]
        if root == self.rank:
            view = _OwnerView(name, sim, self.comm)
            try:
                gen = start_program(name, program, view)
            except QsimDistError as exc:   # refused on every rank alike
                view.publish(_ERROR, (type(exc), exc.args))
                raise
            view.publish(_YIELD)
            return view, _owned(view, gen)
        view = _ReplicaView(name, sim)
        kind, _, payload = self.comm.bcast(None, root=root)
        if kind == _ERROR:
            cls, args = payload
            raise cls(*args)
        return view, _replayed(view, self.comm, root)


class _Handles:
    """Futures a program was handed, numbered in the order its view made them: the owner and
    every replica make them in the same order, so the number names one future everywhere."""

    def __init__(self) -> None:
        self.futures: list[Future] = []
        self.number: dict[int, int] = {}

    def add(self, value: Any) -> Any:
        if isinstance(value, Future):
            self.number[id(value)] = len(self.futures)
            self.futures.append(value)
        return value


def _encode(x: Any, view: "_OwnerView") -> Any:
    """A picklable name of ``x`` that every rank resolves to its own copy of the object."""
    if isinstance(x, Future):
        n = view.handles.number.get(id(x))
        if n is None:
            raise ProgramError(f"node {view.name!r} passed {x!r}, which its own operations did "
                               "not return")
        return ("F", n)
    if isinstance(x, Qubit):
        held = view._sim.rt.holds(x)
        return ("Q", x.index) if held else ("Qx", x.index, x.node, x.kind, x.freed)
    if isinstance(x, Bit):
        return ("B", x.index)
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_encode(v, view) for v in x])
    if isinstance(x, dict):
        return ("dict", [(_encode(k, view), _encode(v, view)) for k, v in x.items()])
    if x is None or isinstance(x, (bool, int, float, complex, str, bytes)):
        return ("=", x)
    try:   # numbers and arrays of numpy pickle; an arbitrary object may not
        import pickle

        pickle.dumps(x)
        return ("=", x)
    except Exception:
        return ("=", None)


def _decode(x: Any, view: NodeView, handles: _Handles) -> Any:
    kind = x[0]
    if kind == "F":
        return handles.futures[x[1]]
    if kind == "Q":
        return view._sim.rt._qubits[x[1]]
    if kind == "Qx":   # a handle this runtime does not hold: the same refusal everywhere
        return Qubit(x[1], x[2], x[3], freed=x[4])
    if kind == "B":
        return Bit(x[1])
    if kind in ("list", "tuple"):
        items = [_decode(v, view, handles) for v in x[1]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_decode(k, view, handles): _decode(v, view, handles) for k, v in x[1]}
    return x[1]


class _OwnerView(NodeView):
    """The view the program itself holds: every action is done and written down."""

    def __init__(self, name: str, sim, comm):
        super().__init__(name, sim)
        self.comm = comm
        self.handles = _Handles()
        self.pending: list[tuple[str, Any]] = []
        self.depth = 0   # > 0 inside an action (gate with a condition calls correct)

    def publish(self, kind: str, payload: Any = None) -> None:
        """Broadcast the actions written down so far, then what ended them."""
        record, self.pending = (kind, self.pending, payload), []
        self.comm.bcast(record, root=self.comm.rank)


def _recording(method: str) -> Callable:
    plain = getattr(NodeView, method)

    def act(self: _OwnerView, *args, **kwargs):
        if self.depth:   # part of an action already written down
            return plain(self, *args, **kwargs)
        self.pending.append((method, _encode(list(args), self), _encode(kwargs, self)))
        if method == "read":   # the ranks advance the shot's state together to answer it
            self.publish(_CALLS)
        self.depth += 1
        try:
            return self.handles.add(plain(self, *args, **kwargs))
        finally:
            self.depth -= 1

    act.__name__, act.__doc__ = method, plain.__doc__
    return act


for _method in _ACTIONS:
    setattr(_OwnerView, _method, _recording(_method))


class _ReplicaView(NodeView):
    """The view on a rank that does not own the node: it only replays the owner's records."""

    def __init__(self, name: str, sim):
        super().__init__(name, sim)
        self.handles = _Handles()

    def replay(self, calls) -> None:
        for method, args, kwargs in calls:
            args, kwargs = _decode(args, self, self.handles), _decode(kwargs, self, self.handles)
            try:
                self.handles.add(getattr(NodeView, method)(self, *args, **kwargs))
            except QsimDistError:
                pass   # the owner met the same refusal; what its program did next is recorded


def _owned(view: _OwnerView, gen):
    """The program's generator, publishing each step's record as it yields, ends or fails."""
    value = None
    while True:
        try:
            request = gen.send(value)
        except StopIteration as stop:
            view.publish(_STOP, _encode(stop.value, view))
            return stop.value
        except QsimDistError as exc:
            _locate(exc)
            view.publish(_ERROR, (type(exc), exc.args))
            raise
        except Exception as exc:
            wrapped = _wrapped(view.name, "its program raised", exc)
            view.publish(_ERROR, (type(wrapped), wrapped.args))
            raise wrapped from exc
        try:
            encoded = _encode(request, view)
        except QsimDistError:   # not a future of its own: the loop's refusal, everywhere
            encoded = ("=", "not a future")
        view.publish(_YIELD, encoded)
        value = yield request


def _replayed(view: _ReplicaView, comm, root: int):
    """A generator that does on this rank what node ``view.name``'s program does on ``root``."""
    while True:
        kind, calls, payload = comm.bcast(None, root=root)
        view.replay(calls)
        if kind == _CALLS:
            continue
        if kind == _STOP:
            return _decode(payload, view, view.handles)
        if kind == _ERROR:
            cls, args = payload
            raise cls(*args)
        yield _decode(payload, view, view.handles)
