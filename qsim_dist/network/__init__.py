"""The distributed-quantum-computer model: network, programs, protocols, runtime, schedule, plots.

Public API (see each module's docstring):

- :mod:`.topology`: :func:`load_network`, :func:`network_from_dict`, :class:`Network`,
  :class:`Node`, :class:`Link`, :class:`NetworkError`;
- :mod:`.program`: :class:`DistributedProgram` and its ops :class:`LocalGate`,
  :class:`RemoteGate`, :class:`Teleport`; :class:`ProgramError`;
- :mod:`.naive`: :func:`naive_program` (a circuit on a network without a compiler),
  :func:`parse_placement`, :func:`default_placement`;
- :mod:`.physics`: the formulas of links and purification (fidelities, rounds, generation times);
- :mod:`.protocols`: EPR pairs, swapping, TeleData, TeleGate, purification;
- :mod:`.runtime`: :class:`Runtime`, the timed machine node programs run on;
- :mod:`.nodes`: node programs (one generator per node: local gates and measurements, classical
  messages, EPR pairs) run together on a discrete-event loop: :class:`NodeView`,
  :class:`Future`, :func:`lower_nodes`, :class:`DeadlockError`, :class:`RunLimitError` (the
  caps on events and simulated time), :class:`NodeProgramError`, and protocol halves for
  ``yield from``;
- :mod:`.lowering`: :func:`lower` (one schedule -> a noisy circuit), :func:`lower_ideal`
  (over ideal links, for checking a compiled program);
- :mod:`.plots`: :func:`plot_topology`, :func:`plot_schedule` (matplotlib, imported when called).

The model imports no backend: running a program on the engine (:func:`run_program`,
:func:`run_nodes`, the :class:`Report`, :func:`ideal_state`, :func:`program_fidelity`) is
:mod:`qsim_dist.dqc`. Importing this package loads numpy only; matplotlib loads when used.
"""

from .lowering import Lowered, logical_circuit, lower, lower_ideal
from .nodes import DeadlockError, Future, NodeProgramError, NodeView, RunLimitError, lower_nodes
from .naive import default_placement, naive_program, parse_placement
from .program import DistributedProgram, LocalGate, ProgramError, RemoteGate, Teleport
from .runtime import Runtime
from .topology import Link, Network, NetworkError, Node, load_network, network_from_dict


def plot_topology(*args, **kwargs):
    """See :func:`qsim_dist.network.plots.plot_topology`."""
    from .plots import plot_topology as plot

    return plot(*args, **kwargs)


def plot_schedule(*args, **kwargs):
    """See :func:`qsim_dist.network.plots.plot_schedule`."""
    from .plots import plot_schedule as plot

    return plot(*args, **kwargs)


__all__ = ["DeadlockError", "DistributedProgram", "Future", "LocalGate", "Link", "Lowered",
           "Network", "NetworkError", "Node", "NodeProgramError", "NodeView", "ProgramError", "RemoteGate",
           "RunLimitError", "Runtime", "Teleport", "default_placement",
           "load_network", "logical_circuit", "lower", "lower_ideal", "lower_nodes",
           "naive_program", "network_from_dict", "parse_placement", "plot_schedule",
           "plot_topology"]
