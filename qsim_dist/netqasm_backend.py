"""NetQASM SDK applications (SquidASM / Quantum Network Explorer) run unchanged on qsim_dist.

An application is per-node Python code written against the ``netqasm`` SDK::

    from netqasm.sdk import EPRSocket, Qubit
    from netqasm.sdk.external import NetQASMConnection, Socket

    def main(app_config=None):
        epr_socket = EPRSocket("bob")
        socket = Socket("alice", "bob")
        with NetQASMConnection("alice", epr_sockets=[epr_socket]) as alice:
            q = Qubit(alice)
            q.H()
            e = epr_socket.create_keep()[0]
            q.cnot(e)
            q.H()
            m1, m2 = q.measure(), e.measure()
        socket.send_structured(StructuredMessage("corr", (int(m1), int(m2))))

and run with::

    import qsim_dist.netqasm_backend as nq   # before the applications are imported
    run = nq.run_netqasm({"alice": alice_main, "bob": bob_main}, network, shots=100, seed=1)
    run.results["bob"][0]        # what bob's main returned in shot 0
    run.report                   # the qsim_dist Report: makespans, EPR pairs, resources

How it works. Importing this module makes ``netqasm.sdk.external.NetQASMConnection`` and
``Socket`` this module's :class:`QsimDistConnection` and :class:`QsimDistSocket` (the SDK picks
its backend the same way for SquidASM and SimulaQron). :func:`run_netqasm` turns each
application into a qsim_dist node program (:mod:`qsim_dist.network.nodes`): the application
runs in its own Python thread, and every ``flush()`` hands the compiled NetQASM subroutine to
the node's program, which executes it instruction by instruction on the network runtime
(gates, measurements read online, EPR pairs from the node's links, with the network's timing
and noise) and writes the returned registers and arrays into the shared memory, so the
application's futures hold values when ``flush()`` returns. ``Socket.send`` / ``recv`` are
qsim_dist messages (they arrive after the path's latency; a message of n bytes carries 8n
classical bits). Only one thread runs at a time (a strict hand-over), so runs are
deterministic for a seed; Python's ``random`` module is reseeded for every shot from the seed
(and restored afterwards), so applications that draw with ``random`` are reproducible too.

The classical NetQASM instructions (set, arrays, load/store, branches, arithmetic, ret_reg,
ret_arr) run on netqasm's own :class:`~netqasm.backend.executor.Executor`; this module maps the
quantum ones. Anything else (NV-flavour instructions, ``meas_basis``, breakpoints, remote
state preparation, random-basis measure-directly requests, broadcast channels) is an
:class:`UnsupportedNetQASM` error, one line. See docs/netqasm.md.
"""

from __future__ import annotations

import inspect
import math
import os
import pickle
import queue
import random
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .errors import QsimDistError
from .network.program import ProgramError
from .network.topology import Network, NetworkError, network_from_dict

# the SDK chooses its backend by this variable when netqasm.sdk.external is first imported;
# its default (netsquid) needs squidasm, so without it the import itself would fail
os.environ.setdefault("NETQASM_SIMULATOR", "debug")

try:
    import netqasm.sdk.external as _external
    from netqasm.backend.executor import Executor
    from netqasm.backend.messages import (InitNewAppMessage, OpenEPRSocketMessage,
                                          SignalMessage, StopAppMessage)
    from netqasm.lang import instr as _ins
    from netqasm.lang.operand import ArrayEntry, ArraySlice
    from netqasm.qlink_compat import (BellState, LinkLayerOKTypeK, LinkLayerOKTypeM,
                                      RandomBasis, RequestType, ReturnType)
    from netqasm.runtime.app_config import AppConfig
    from netqasm.sdk.classical_communication.message import StructuredMessage
    from netqasm.sdk.classical_communication.socket import Socket as _SocketBase
    from netqasm.sdk.connection import BaseNetQASMConnection
    from netqasm.sdk.network import NetworkInfo
    from netqasm.sdk.shared_memory import SharedMemory
except ImportError as exc:   # pragma: no cover - exercised only without the extra
    raise ImportError("qsim_dist.netqasm_backend needs the netqasm package "
                      "(pip install netqasm)") from exc


class NetQASMError(ProgramError):
    """A NetQASM application cannot run as written (a bad subroutine, a socket misuse, ...)."""


class UnsupportedNetQASM(NetQASMError):
    """A NetQASM instruction or SDK feature this backend does not execute."""


# ---- the hand-over between an application thread and its node program ----------------------

class _Aborted(BaseException):
    """Raised in an application thread whose run ended without it (an error elsewhere): a
    BaseException, so that the application's own ``except Exception`` does not swallow it."""


_local = threading.local()


def _session() -> "_NodeSession":
    session = getattr(_local, "session", None)
    if session is None:
        raise NetQASMError("a NetQASMConnection or Socket of qsim_dist's backend is used outside "
                           "run_netqasm (run the application with run_netqasm)")
    return session


class _NodeSession:
    """One node's application in one run: its thread, its executor, the hand-over queues."""

    def __init__(self, run: "_RunState", node_name: str, app: Callable,
                 kwargs: Mapping[str, Any]):
        self.run = run
        self.node_name = node_name
        self.app = app
        self.kwargs = dict(kwargs)
        self.requests: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue()
        self.aborted = False
        self.finished = False
        self.result: Any = None
        self.thread = threading.Thread(target=self._thread_main, daemon=True,
                                       name=f"netqasm app {node_name}")
        self.node = None
        self.executor: _QsimDistExecutor | None = None
        self.inbox: dict[tuple[str, int], deque] = {}   # messages that came for another socket
        self.app_line: str | None = None   # where the application made its last request

    # ---- application side (its thread) ----------------------------------------------------------
    def _thread_main(self) -> None:
        _local.session = self
        try:
            result = self.app(**self.kwargs)
        except _Aborted:
            return
        except BaseException as exc:   # handed to the node program, which raises it there
            self.requests.put(("raised", exc))
            return
        self.requests.put(("finished", result))

    def call(self, *request) -> Any:
        """From the application thread: hand ``request`` to the node program, wait for its
        answer."""
        if self.aborted:
            raise _Aborted()
        self.app_line = _application_line()
        self.requests.put(request)
        kind, value = self.replies.get()
        if kind == "abort":
            self.aborted = True
            raise _Aborted()
        return value

    # ---- node-program side (the event loop's thread) ------------------------------------------
    def program(self, node):
        """The qsim_dist node program of this application: serve its requests until it ends."""
        self.node = node
        self.executor = _QsimDistExecutor(self, node)
        self.thread.start()
        while True:
            request = self.requests.get()
            kind = request[0]
            if kind == "finished":
                self.finished, self.result = True, request[1]
                self.thread.join()
                return None
            if kind == "raised":
                self.finished = True
                self.thread.join()
                raise request[1]
            if kind == "message":
                answer = yield from self.executor.handle_message(request[1])
            elif kind == "subroutine":
                answer = yield from self.executor.run_subroutine(request[1])
            elif kind == "send":
                _, remote, socket_id, payload = request
                node.send(remote, *_to_bits(_encode(socket_id, payload)))
                answer = None
            elif kind == "recv":
                _, remote, socket_id = request
                answer = yield from self._receive(remote, socket_id)
            else:   # pragma: no cover - requests are made by this module only
                raise AssertionError(kind)
            self.replies.put(("ok", answer))

    def _receive(self, remote: str, socket_id: int):
        """The next message from ``remote`` to socket ``socket_id``; messages for other
        sockets between the same two nodes wait in their own queue."""
        waiting = self.inbox.get((remote, socket_id))
        if waiting:
            return waiting.popleft()
        while True:
            bits = yield self.node.recv(remote)
            their_socket, payload = _decode(_from_bits(bits))
            if their_socket == socket_id:
                return payload
            self.inbox.setdefault((remote, their_socket), deque()).append(payload)

    def abort(self) -> None:
        """End the application thread of a run that stopped without it."""
        if self.thread.is_alive():
            self.replies.put(("abort", None))
            self.thread.join(timeout=10)


# a message on the wire: [kind, socket id (2 bytes)] + body; a text message is its UTF-8 bytes
# (8 classical bits a character), anything else (a StructuredMessage's payload) is pickled
_TEXT, _STRUCTURED, _OBJECT = 0, 1, 2


def _encode(socket_id: int, msg: Any) -> bytes:
    if isinstance(msg, str):
        kind, body = _TEXT, msg.encode()
    elif isinstance(msg, StructuredMessage):
        kind, body = _STRUCTURED, pickle.dumps((msg.header, msg.payload), protocol=4)
    else:
        kind, body = _OBJECT, pickle.dumps(msg, protocol=4)
    return bytes([kind]) + int(socket_id).to_bytes(2, "big") + body


def _decode(data: bytes) -> tuple[int, Any]:
    kind, socket_id, body = data[0], int.from_bytes(data[1:3], "big"), data[3:]
    if kind == _TEXT:
        return socket_id, body.decode()
    if kind == _STRUCTURED:
        return socket_id, StructuredMessage(*pickle.loads(body))
    return socket_id, pickle.loads(body)


_NETQASM_DIR = os.path.dirname(os.path.abspath(_external.__file__)).rsplit(os.sep, 1)[0]
_SKIPPED = (_NETQASM_DIR + os.sep, os.path.abspath(__file__), threading.__file__)


def _application_line() -> str | None:
    """``file:line`` of the application code that flushed or sent (the innermost frame
    outside netqasm, this module and threading): where an error in its subroutine points."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_SKIPPED):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _to_bits(data: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(data, dtype=np.uint8)))


def _from_bits(bits) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


@dataclass
class _RunState:
    """What the node programs of one run share: node ids, the EPR requests made so far (the
    receiver of a measure-directly pair measures in the basis its creator asked for), and
    the node sessions (each shot is one run of every program)."""

    node_ids: dict[str, int]
    creates: dict[tuple[str, str], deque] = field(default_factory=dict)
    sessions: dict[str, _NodeSession] = field(default_factory=dict)

    def node_name(self, node_id: int) -> str:
        for name, i in self.node_ids.items():
            if i == node_id:
                return name
        raise NetQASMError(f"no node has NetQASM node id {node_id}")


# ---- the SDK classes the applications get from netqasm.sdk.external ---------------------------

class _QsimDistNetworkInfo(NetworkInfo):
    """Node names and ids of the run the calling thread belongs to (app names are node
    names, as in SquidASM's configurations)."""

    @classmethod
    def _get_node_id(cls, node_name: str) -> int:
        ids = _session().run.node_ids
        if node_name not in ids:
            raise NetQASMError(f"{node_name!r} is not a node of the network (nodes: "
                               f"{', '.join(ids)})")
        return ids[node_name]

    @classmethod
    def _get_node_name(cls, node_id: int) -> str:
        return _session().run.node_name(node_id)

    @classmethod
    def get_node_id_for_app(cls, app_name: str) -> int:
        return cls._get_node_id(app_name)

    @classmethod
    def get_node_name_for_app(cls, app_name: str) -> str:
        cls._get_node_id(app_name)
        return app_name


class QsimDistConnection(BaseNetQASMConnection):
    """``NetQASMConnection`` on qsim_dist: every message and flushed subroutine goes to the
    node program of the calling application thread (see the module docstring)."""

    def __init__(self, app_name: str, *args, **kwargs):
        session = _session()
        if app_name != session.node_name:
            raise NetQASMError(f"the application of node {session.node_name!r} opens a "
                               f"connection as {app_name!r} (app names are node names)")
        self._qsim_session = session
        super().__init__(app_name, *args, **kwargs)

    def _get_network_info(self):
        return _QsimDistNetworkInfo

    @property
    def shared_memory(self) -> SharedMemory:
        return self._qsim_session.executor.memory(self.app_id)

    def _commit_message(self, msg, block: bool = True, callback: Callable | None = None):
        self._qsim_session.call("message", msg)
        if callback is not None:
            callback()

    def _commit_serialized_message(self, raw_msg: bytes, block: bool = True,
                                   callback: Callable | None = None) -> None:
        raise AssertionError("messages are handed over as objects")  # _commit_message does

    def commit_subroutine(self, subroutine, block: bool = True,
                          callback: Callable | None = None) -> None:
        # the Subroutine object itself, not its serialized bytes: same thread-free process
        self._qsim_session.call("subroutine", subroutine)
        if callback is not None:
            callback()

    def block(self) -> None:
        """Subroutines run to completion in ``flush``: nothing is left to wait for."""


class QsimDistSocket(_SocketBase):
    """``Socket`` on qsim_dist: a message is a qsim_dist message between the two nodes (it
    arrives after the path's latency); ``recv`` waits in simulated time."""

    def __init__(self, app_name: str, remote_app_name: str, socket_id: int = 0,
                 timeout: float | None = None, use_callbacks: bool = False,
                 log_config=None):
        session = _session()
        if app_name != session.node_name:
            raise NetQASMError(f"the application of node {session.node_name!r} opens a socket "
                               f"as {app_name!r} (app names are node names)")
        if remote_app_name not in session.run.node_ids or remote_app_name == app_name:
            raise NetQASMError(f"node {app_name!r} opens a socket to {remote_app_name!r}, which "
                               "is not another node of the network")
        if use_callbacks:
            raise UnsupportedNetQASM("Socket(use_callbacks=True) is not supported by qsim_dist's "
                                     "backend")
        self._session = session
        self.app_name = app_name
        self.remote_app_name = remote_app_name
        self.id = socket_id

    def send(self, msg: str) -> None:
        if not isinstance(msg, str):
            raise TypeError(f"Messages needs to be a string, not {type(msg)}")
        self._session.call("send", self.remote_app_name, self.id, msg)

    def recv(self, block: bool = True, timeout: float | None = None,
             maxsize: int | None = None) -> str:
        if not block:
            raise UnsupportedNetQASM("Socket.recv(block=False) is not supported by qsim_dist's "
                                     "backend (messages arrive in simulated time)")
        return self._session.call("recv", self.remote_app_name, self.id)

    def send_structured(self, msg) -> None:
        self._session.call("send", self.remote_app_name, self.id, msg)

    def recv_structured(self, block: bool = True, timeout: float | None = None,
                        maxsize: int | None = None):
        return self.recv(block=block, timeout=timeout, maxsize=maxsize)

    send_silent = send
    recv_silent = recv


def _no_qubit_state(*args, **kwargs):
    raise UnsupportedNetQASM("get_qubit_state is not supported by qsim_dist's backend (the "
                             "report's fidelity is over qubits a node program returns)")


def _no_broadcast(*args, **kwargs):
    raise UnsupportedNetQASM("BroadcastChannel is not supported by qsim_dist's backend (use a "
                             "Socket per node)")


# what applications import from netqasm.sdk.external from now on
_external.NetQASMConnection = QsimDistConnection
_external.Socket = QsimDistSocket
_external.BroadcastChannel = _no_broadcast
_external.get_qubit_state = _no_qubit_state


# ---- the executor: NetQASM subroutines on a qsim_dist node -------------------------------------

#: NetQASM single-qubit gates -> (qsim_dist gate, parameters); K = (Y + Z)/sqrt(2) is u3(pi/2,
#: pi/2, pi/2) exactly (no global phase)
_SINGLE_GATES = {"x": ("x", ()), "y": ("y", ()), "z": ("z", ()), "h": ("h", ()),
                 "s": ("s", ()), "t": ("t", ()),
                 "k": ("u3", (math.pi / 2, math.pi / 2, math.pi / 2))}
_ROTATIONS = {"rot_x": "rx", "rot_y": "ry", "rot_z": "rz"}
_TWO_GATES = {"cnot": "cx", "cphase": "cz"}
#: measure-directly rotation axes (netqasm QubitMeasureAxes): the qubit turns by n_k * pi/16
#: about axis k, k = 1, 2, 3, then is measured in Z
_AXES = {0: ("rx", "ry", "rx"), 1: ("ry", "rz", "ry"), 2: ("rz", "rx", "rz")}

_SUPPORTED = (
    _ins.core.QAllocInstruction, _ins.core.InitInstruction, _ins.core.ArrayInstruction,
    _ins.core.SetInstruction, _ins.core.StoreInstruction, _ins.core.LoadInstruction,
    _ins.core.UndefInstruction, _ins.core.LeaInstruction, _ins.core.JmpInstruction,
    _ins.core.BranchUnaryInstruction, _ins.core.BranchBinaryInstruction,
    _ins.core.ClassicalOpInstruction, _ins.core.ClassicalOpModInstruction,
    _ins.core.MeasInstruction, _ins.core.CreateEPRInstruction, _ins.core.RecvEPRInstruction,
    _ins.core.WaitAllInstruction, _ins.core.WaitAnyInstruction,
    _ins.core.WaitSingleInstruction, _ins.core.QFreeInstruction,
    _ins.core.RetRegInstruction, _ins.core.RetArrInstruction,
)


@dataclass
class _PendingPair:
    """One EPR pair asked for by create_epr / recv_epr, not yet waited for."""

    future: Any                 # the qsim_dist future of this node's half
    subroutine_id: int
    results_address: int        # the entanglement-results array
    index: int                  # which pair of the request
    qubit_array: int | None     # array of virtual qubit ids (keep requests)
    remote: str
    creator: bool
    request: Any                # the creator's LinkLayerCreate (the receiver's: from the board)


class _QsimDistExecutor(Executor):
    """netqasm's Executor with the quantum instructions done by a qsim_dist node program.

    Its methods that act on qubits are generators that yield qsim_dist futures; the node
    program runs them with ``yield from``, so the executor's waits are the node's waits in
    simulated time."""

    def __init__(self, session: _NodeSession, node):
        super().__init__(name=session.node_name)
        self._session = session
        self._node = node
        self._qubits: dict[int, Any] = {}         # physical address -> qsim_dist Qubit
        self._memories: dict[int, SharedMemory] = {}
        self._epr_sockets: set[tuple[int, int]] = set()   # (local socket id, remote node id)
        self._pending: list[_PendingPair] = []
        self._instruction: Any = None

    @property
    def node_id(self) -> int:
        return self._session.run.node_ids[self._session.node_name]

    # ---- messages from the connection -------------------------------------------------------------
    def handle_message(self, msg):
        if isinstance(msg, InitNewAppMessage):
            self.init_new_application(app_id=msg.app_id, max_qubits=msg.max_qubits)
        elif isinstance(msg, OpenEPRSocketMessage):
            self._epr_sockets.add((msg.epr_socket_id, msg.remote_node_id))
        elif isinstance(msg, StopAppMessage):
            yield from self.stop_application(app_id=msg.app_id)
        elif not isinstance(msg, SignalMessage):   # a stop signal: nothing to tear down
            raise UnsupportedNetQASM(f"node {self.name!r}: NetQASM message "
                                     f"{type(msg).__name__} is not supported")
        return None

    def run_subroutine(self, subroutine):
        yield from self.execute_subroutine(subroutine)
        if self._pending:
            raise NetQASMError(f"node {self.name!r}: a subroutine ends with EPR pairs it asked "
                               "for and never waited for (wait_all)")
        return None

    def memory(self, app_id: int) -> SharedMemory:
        if app_id not in self._memories:
            raise NetQASMError(f"node {self.name!r}: app id {app_id} was never registered")
        return self._memories[app_id]

    def _new_shared_memory(self, app_id: int) -> None:
        # one memory per executor, not netqasm's process-wide registry: shots and aborted
        # runs never meet an old one
        self._memories[app_id] = self._shared_memories[app_id] = SharedMemory()

    def _clear_shared_memory(self, app_id: int) -> None:
        # the application reads its futures after the connection closes: keep the memory
        self._shared_memories.pop(app_id, None)

    # ---- instruction dispatch and errors ------------------------------------------------------------
    def _execute_command(self, subroutine_id: int, command):
        self._instruction = command
        if not isinstance(command, _SUPPORTED) and not self._is_mapped_gate(command):
            raise UnsupportedNetQASM(
                f"node {self.name!r}: NetQASM instruction {command.mnemonic!r} is not "
                "supported by qsim_dist's backend (supported: qalloc, init, qfree, x, y, z, "
                "h, s, t, k, rot_x/y/z, cnot, cphase, meas, create_epr, recv_epr, wait_*, "
                "and the classical instructions)")
        yield from super()._execute_command(subroutine_id, command)

    @staticmethod
    def _is_mapped_gate(command) -> bool:
        return command.mnemonic in _SINGLE_GATES or command.mnemonic in _ROTATIONS \
            or command.mnemonic in _TWO_GATES

    def _handle_command_exception(self, exc: Exception, prog_counter: int,
                                  traceback_str: str) -> None:
        where = f"subroutine line {prog_counter} ({self._instruction})"
        if self._session.app_line:   # the application's line, not the executor's
            where += f" (program line {self._session.app_line})"
        if isinstance(exc, QsimDistError):
            if len(exc.args) == 1 and isinstance(exc.args[0], str):
                exc.args = (f"{exc.args[0]} [{where}]",)
            raise exc
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise NetQASMError(f"node {self.name!r}: {where}: {type(exc).__name__}: {text}") from exc

    # ---- qubits -----------------------------------------------------------------------------------------
    def _qubit(self, subroutine_id: int, address: int):
        return self._qubits[self._get_position(subroutine_id=subroutine_id, address=address)]

    def _allocate_physical_qubit(self, subroutine_id: int, virtual_address: int,
                                 physical_address: int | None = None) -> int:
        fresh = physical_address is None
        physical = super()._allocate_physical_qubit(subroutine_id, virtual_address,
                                                    physical_address)
        if fresh:   # qalloc: a data qubit of the node (an EPR half comes with its own)
            self._qubits[physical] = self._node.qubit()
        return physical

    def _clear_phys_qubit_in_memory(self, physical_address: int):
        qubit = self._qubits.pop(physical_address, None)
        if qubit is not None:
            self._node.free(qubit)
        return
        yield  # a generator: the base class runs it with ``yield from``

    def _do_single_qubit_instr(self, instr, subroutine_id: int, address: int):
        q = self._qubit(subroutine_id, address)
        if instr.mnemonic == "init":
            self._node.reset(q)
        else:
            gate, params = _SINGLE_GATES[instr.mnemonic]
            self._node.gate(gate, q, params=params)

    def _do_single_qubit_rotation(self, instr, subroutine_id: int, address: int,
                                  angle: float):
        self._node.gate(_ROTATIONS[instr.mnemonic], self._qubit(subroutine_id, address),
                        params=(angle,))

    def _do_two_qubit_instr(self, instr, subroutine_id: int, address1: int, address2: int):
        self._node.gate(_TWO_GATES[instr.mnemonic], self._qubit(subroutine_id, address1),
                        self._qubit(subroutine_id, address2))

    def _do_meas(self, subroutine_id: int, q_address: int):
        bit = self._node.measure(self._qubit(subroutine_id, q_address))
        value = yield self._node.read(bit)
        return int(value)

    # ---- entanglement -----------------------------------------------------------------------------------
    def _get_purpose_id(self, remote_node_id: int, epr_socket_id: int) -> int:
        return epr_socket_id

    def _remote(self, remote_node_id: int, epr_socket_id: int) -> str:
        if (epr_socket_id, remote_node_id) not in self._epr_sockets:
            raise NetQASMError(f"node {self.name!r}: EPR socket {epr_socket_id} towards node "
                               f"id {remote_node_id} was never opened")
        return self._session.run.node_name(remote_node_id)

    def _do_create_epr(self, subroutine_id: int, remote_node_id: int, epr_socket_id: int,
                       q_array_address, arg_array_address: int,
                       ent_results_array_address: int):
        remote = self._remote(remote_node_id, epr_socket_id)
        request = self._get_create_request(subroutine_id, remote_node_id, epr_socket_id,
                                           arg_array_address)
        if request.type == RequestType.R:
            raise UnsupportedNetQASM(f"node {self.name!r}: remote state preparation "
                                     "(create_rsp) is not supported by qsim_dist's backend")
        if request.type == RequestType.M and (
                request.random_basis_local not in (0, RandomBasis.NONE)
                or request.random_basis_remote not in (0, RandomBasis.NONE)):
            raise UnsupportedNetQASM(f"node {self.name!r}: measure-directly with a random "
                                     "basis is not supported (give the rotations)")
        board = self._session.run.creates.setdefault((self.name, remote), deque())
        for index in range(request.number):
            board.append(request)
            self._pending.append(_PendingPair(
                self._node.epr(remote), subroutine_id, ent_results_array_address, index,
                q_array_address if request.type == RequestType.K else None, remote, True,
                request))

    def _do_recv_epr(self, subroutine_id: int, remote_node_id: int, epr_socket_id: int,
                     q_array_address, ent_results_array_address: int):
        remote = self._remote(remote_node_id, epr_socket_id)
        app_id = self._get_app_id(subroutine_id)
        number = self._get_num_pairs_from_array(app_id, ent_results_array_address)
        for index in range(number):
            self._pending.append(_PendingPair(
                self._node.epr(remote), subroutine_id, ent_results_array_address, index,
                q_array_address, remote, False, None))

    def _instr_wait_all(self, subroutine_id: int, instr):
        yield from self._wait(subroutine_id, instr.slice, all)

    def _instr_wait_any(self, subroutine_id: int, instr):
        yield from self._wait(subroutine_id, instr.slice, any)

    def _instr_wait_single(self, subroutine_id: int, instr):
        yield from self._wait(subroutine_id, instr.entry, all)

    def _wait(self, subroutine_id: int, part, done: Callable):
        """Deliver the pending pairs whose results land in ``part`` (an array slice or entry)
        in the order they were asked for, then check that ``part`` is written."""
        app_id = self._get_app_id(subroutine_id)
        address, index = self._expand_array_part(app_id, part)
        fields = len(LinkLayerOKTypeK._fields)
        wanted = range(*index.indices(10**9)) if isinstance(index, slice) else [index]
        for pair in list(self._pending):
            slots = range(pair.index * fields, (pair.index + 1) * fields)
            if pair.results_address == address and any(i in slots for i in wanted):
                self._pending.remove(pair)
                yield from self._deliver(pair)
        values = self._app_arrays[app_id][address, index]
        values = values if isinstance(values, list) else [values]
        if not done(v is not None for v in values):
            raise NetQASMError(f"node {self.name!r}: {self._instruction} waits for array "
                               "entries that no entanglement request will write (a deadlock)")
        self._program_counters[subroutine_id] += 1

    def _deliver(self, pair: _PendingPair):
        """Wait for ``pair``'s half, then keep it (K) or measure it at once (M), and write its
        entanglement results."""
        qubit = yield pair.future
        request = pair.request
        if not pair.creator:   # the creator asked first: its request is on the board
            request = self._session.run.creates[(pair.remote, self.name)].popleft()
        app_id = self._get_app_id(pair.subroutine_id)
        remote_id = self._session.run.node_ids[pair.remote]
        direction = 0 if pair.creator else 1
        if request.type == RequestType.K:
            if pair.qubit_array is None:
                raise NetQASMError(f"node {self.name!r}: a keep pair from {pair.remote!r} but "
                                   "this node asked to measure it directly (recv_measure "
                                   "against create_keep)")
            entry = self._app_arrays[app_id][pair.qubit_array, pair.index]
            physical = self._get_unused_physical_qubit()
            self._qubits[physical] = qubit
            self._allocate_physical_qubit(pair.subroutine_id, entry, physical)
            info = LinkLayerOKTypeK(ReturnType.OK_K.value, 0, physical, direction, pair.index,
                                    request.purpose_id, remote_id, 0, 0,
                                    BellState.PHI_PLUS.value)
        else:
            if pair.qubit_array is not None and not pair.creator:
                raise NetQASMError(f"node {self.name!r}: a measure-directly pair from "
                                   f"{pair.remote!r} but this node asked to keep it "
                                   "(recv_keep against create_measure)")
            outcome = yield from self._measure_rotated(qubit, request, local=pair.creator)
            info = LinkLayerOKTypeM(ReturnType.OK_M.value, 0, outcome, 0, direction,
                                    pair.index, request.purpose_id, remote_id, 0,
                                    BellState.PHI_PLUS.value)
        start = pair.index * len(info)
        self._app_arrays[app_id][pair.results_address, start:start + len(info)] = list(info)

    def _measure_rotated(self, qubit, request, local: bool):
        """Measure-directly: rotate by the request's (n1, n2, n3) * pi/16 about its axes, then
        measure in Z; the communication qubit is freed for the next pair."""
        side = "local" if local else "remote"
        turns = [getattr(request, f"rotation_{side}_{k}") or 0 for k in (1, 2, 3)]
        axes = _AXES.get(getattr(request, f"rotation_axes_{side}") or 0)
        if axes is None:
            raise UnsupportedNetQASM(f"node {self.name!r}: rotation axes "
                                     f"{getattr(request, f'rotation_axes_{side}')!r}")
        for gate, n in zip(axes, turns):
            if n % 32:
                self._node.gate(gate, qubit, params=(n * math.pi / 16,))
        bit = self._node.measure(qubit)
        value = yield self._node.read(bit)
        self._node.free(qubit)
        return int(value)


# ---- running applications ------------------------------------------------------------------------

@dataclass
class NetQASMRun:
    """What :func:`run_netqasm` gives: the qsim_dist report of the run and, per node, what its
    application returned in each shot (``results[node][shot]``, like SquidASM's per-shot
    result dicts)."""

    report: Any
    results: dict[str, list[Any]]


def _takes_app_config(app: Callable) -> bool:
    try:
        return "app_config" in inspect.signature(app).parameters
    except (TypeError, ValueError):
        return False


def _check_bindings(node: str, app: Callable) -> None:
    """An application module that imported ``netqasm.sdk.external`` before this backend holds
    the debug connection, which stores subroutines and never runs them: say so."""
    from netqasm.sdk.classical_communication import ThreadSocket
    from netqasm.sdk.connection import DebugConnection

    names = getattr(app, "__globals__", {})
    for name, value in names.items():
        if value is DebugConnection or value is ThreadSocket:
            raise NetQASMError(f"the application of node {node!r} holds netqasm's "
                               f"{value.__name__} as {name!r}: import "
                               "qsim_dist.netqasm_backend before the application "
                               "module (or import NetQASMConnection/Socket inside main)")


def run_netqasm(apps: Mapping[str, Callable], network: Network, shots: int = 1,
                seed: int | None = None, *, inputs: Mapping[str, Mapping] | None = None,
                **run_nodes_options) -> NetQASMRun:
    """Run NetQASM SDK applications (node name -> its ``main``) together on ``network`` for
    ``shots`` shots; returns a :class:`NetQASMRun` (the report and every shot's return
    values).

    ``inputs``: node name -> keyword arguments of that node's ``main`` (SquidASM's app
    inputs); a ``main`` with an ``app_config`` parameter also gets a netqasm ``AppConfig``.
    The other keyword arguments go to :func:`qsim_dist.dqc.run_nodes` (backend, ideal,
    max_events, ...); applications always run online, shot by shot.
    """
    from .dqc import run_nodes
    from .errors import OptionError

    if not isinstance(network, Network):
        raise OptionError(f"network must be a Network (load_network, network_from_squidasm), "
                          f"got {type(network).__name__}")
    if not isinstance(apps, Mapping) or not apps:
        raise NetQASMError("apps must be a non-empty mapping of node name -> application main")
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
        raise OptionError(f"shots must be a positive integer, got {shots!r}")
    inputs = dict(inputs or {})
    for name, app in apps.items():
        if name not in network.nodes:
            raise NetQASMError(f"an application for {name!r}, which is not a node of the "
                               "network")
        if not callable(app):
            raise NetQASMError(f"the application of node {name!r} must be callable (its main), "
                               f"got {type(app).__name__}")
        _check_bindings(name, app)
    for name in inputs:
        if name not in apps:
            raise NetQASMError(f"inputs for {name!r}, which has no application")
    run_nodes_options.pop("execution", None)

    node_ids = {name: i for i, name in enumerate(network.nodes)}
    runs: list[_RunState] = []
    shot_seeds = np.random.SeedSequence(seed).spawn(1)[0] if seed is not None else None
    saved_random = random.getstate()

    def program_of(name: str, app: Callable):
        def program(node):
            # every shot calls each program once, in the order of ``apps``: a node already
            # seen starts the next run
            if not runs or name in runs[-1].sessions:
                runs.append(_RunState(dict(node_ids)))
                if shot_seeds is not None:
                    random.seed(int(shot_seeds.spawn(1)[0].generate_state(1)[0]))
            kwargs = dict(inputs.get(name, {}))
            if _takes_app_config(app):
                kwargs["app_config"] = AppConfig(app_name=name, node_name=name, main_func=app,
                                                 log_config=None, inputs=dict(kwargs))
            session = _NodeSession(runs[-1], name, app, kwargs)
            runs[-1].sessions[name] = session
            return session.program(node)
        return program

    programs = {name: program_of(name, app) for name, app in apps.items()}
    try:
        report = run_nodes(programs, network, shots=shots, seed=seed, execution="online",
                           **run_nodes_options)
    finally:
        for run in runs:
            for session in run.sessions.values():
                session.abort()
        random.setstate(saved_random)
    # the runs before the last ``shots`` are the noise-free reference runs of run_nodes
    shot_runs = runs[-shots:]
    results = {name: [run.sessions[name].result for run in shot_runs] for name in apps}
    return NetQASMRun(report, results)


# ---- SquidASM network configurations --------------------------------------------------------------

NS = 1e-9   # SquidASM's times are nanoseconds


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """``key`` of a mapping (a parsed YAML file) or attribute of a config object."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _decay(value: Any) -> float:
    # NetSquid's T1 = 0 / T2 = 0 means no decay
    return math.inf if not value else float(value) * NS


def network_from_squidasm(config: Any, name: str = "squidasm") -> Network:
    """A qsim_dist :class:`Network` from a SquidASM network configuration: a
    ``StackNetworkConfig`` object, its YAML file's path, or the parsed YAML mapping (both the
    ``stacks``/``stack1`` and the newer ``processing_nodes``/``node1`` spellings). The mapping
    of every field is the table in docs/netqasm.md; fields qsim_dist cannot model are a
    :class:`NetworkError`."""
    if isinstance(config, (str, os.PathLike)):
        import yaml

        path = os.fspath(config)
        with open(path) as f:
            config = yaml.safe_load(f)
        name = os.path.splitext(os.path.basename(path))[0]
    stacks = _get(config, "stacks") or _get(config, "processing_nodes")
    if not stacks:
        raise NetworkError("a SquidASM configuration needs stacks (or processing_nodes)")
    nodes: dict[str, dict] = {}
    for stack in stacks:
        stack_name = str(_get(stack, "name"))
        typ = _get(stack, "qdevice_typ", "generic")
        if typ != "generic":
            raise NetworkError(f"stack {stack_name!r}: qdevice_typ {typ!r} is not supported "
                               "(qsim_dist models the generic qdevice)")
        cfg = _get(stack, "qdevice_cfg") or {}
        qubits = int(_get(cfg, "num_qubits", 2) or 2)
        comm = int(_get(cfg, "num_comm_qubits", qubits) or qubits)
        t1, t2 = _decay(_get(cfg, "T1")), _decay(_get(cfg, "T2"))
        if t2 > 2 * t1:   # NetSquid lets T2 exceed 2 T1; the physical bound caps it
            t2 = 2 * t1
        decay = {k: v for k, v in (("t1", t1), ("t2", t2)) if v != math.inf}   # out: none
        nodes[stack_name] = {
            "data_qubits": qubits, "comm_qubits": comm, **decay,
            "gate_time": float(_get(cfg, "single_qubit_gate_time", 0) or 0) * NS,
            "measure_time": float(_get(cfg, "measure_time",
                                       _get(cfg, "measurement_time", 0)) or 0) * NS,
            # NetSquid's depolarising probability is qsim_dist's (rho -> (1-p) rho + p I/2)
            "gate_error_1q": float(_get(cfg, "single_qubit_gate_depolar_prob", 0) or 0),
            "gate_error_2q": _two_qubit_depolar(
                float(_get(cfg, "two_qubit_gate_depolar_prob", 0) or 0)),
        }
    latencies: dict[frozenset, float] = {}
    for clink in _get(config, "clinks") or []:
        a, b = _ends(clink)
        typ = _get(clink, "typ", "instant")
        if typ not in ("instant", "default"):
            raise NetworkError(f"clink {a}-{b}: typ {typ!r} is not supported (instant, default)")
        delay = _get(_get(clink, "cfg") or {}, "delay", 0) if typ == "default" else 0
        latencies[frozenset((a, b))] = float(delay or 0) * NS
    links = []
    for link in _get(config, "links") or []:
        a, b = _ends(link)
        typ = _get(link, "typ", "perfect")
        cfg = _get(link, "cfg") or {}
        spec: dict[str, Any] = {"between": [a, b],
                                "latency": latencies.get(frozenset((a, b)), 0.0)}
        if typ in ("depolarise", "depolarise_any_bell"):
            # SquidASM's depolarising link delivers (1-p)|phi+><phi+| + p I/4 with
            # fidelity F: qsim_dist's Werner pair of the same F
            spec["fidelity"] = float(_get(cfg, "fidelity", 1.0))
            spec["success_probability"] = float(_get(cfg, "prob_success", 1.0))
            spec["attempt_time"] = float(_get(cfg, "t_cycle", 0.0) or 0.0) * NS
        elif typ != "perfect":
            raise NetworkError(f"link {a}-{b}: typ {typ!r} is not supported (perfect, "
                               "depolarise)")
        links.append(spec)
    return network_from_dict({"name": name, "nodes": nodes, "links": links}, name=name)


def _two_qubit_depolar(p: float) -> float:
    """SquidASM depolarises each qubit of a two-qubit gate on its own with probability p;
    qsim_dist has one two-qubit depolarising channel: the one of the same entanglement
    fidelity, 1 - 15 p2/16 = (1 - 3 p/4)^2."""
    return 16 / 15 * (1 - (1 - 0.75 * p) ** 2)


def _ends(link: Any) -> tuple[str, str]:
    a = _get(link, "stack1", _get(link, "node1"))
    b = _get(link, "stack2", _get(link, "node2"))
    if a is None or b is None:
        raise NetworkError(f"a SquidASM link needs stack1 and stack2, got {link!r}")
    return str(a), str(b)


__all__ = ["NetQASMError", "UnsupportedNetQASM", "NetQASMRun", "QsimDistConnection",
           "QsimDistSocket", "network_from_squidasm", "run_netqasm"]
