"""Pictures of a network run: the topology with its link fidelities, and the schedule as a Gantt
chart. matplotlib (``pip install -e ".[plot]"``) is imported only here, with the Agg backend;
networkx, when installed, lays out the topology (otherwise nodes sit on a circle). The file type
follows the suffix (``.png``, ``.svg``, ``.pdf``). Pictures are written as every file of this
package is (:mod:`qsim_dist.io.files`): a regular file only, atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from ..errors import OptionError
from ..io.files import check_output_path
from .runtime import Event
from .topology import Network

_COLOURS = {"epr": "#4c72b0", "gate": "#55a868", "measure": "#c44e52", "wait": "#dddddd",
            "message": "#8172b2"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise OptionError("plots need matplotlib: pip install -e '.[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise OptionError(f"cannot write a picture to '{path}': use a .png, .svg or .pdf name")


def _layout(network: Network) -> dict[str, tuple[float, float]]:
    names = list(network.nodes)
    try:
        import networkx as nx
    except ImportError:
        nx = None
    if nx is not None and len(names) > 2:
        g = nx.Graph()
        g.add_nodes_from(names)
        g.add_edges_from(link.ends for link in network.links)
        return {n: (float(x), float(y)) for n, (x, y) in nx.kamada_kawai_layout(g).items()}
    k = len(names)
    return {n: (math.cos(2 * math.pi * i / k + math.pi), math.sin(2 * math.pi * i / k + math.pi))
            for i, n in enumerate(names)}


def plot_topology(network: Network, path: str | Path, title: str | None = None) -> Path:
    """Nodes (compute nodes as blue boxes with their data/communication qubits, repeaters in
    orange) and links labelled with their fidelity, latency and mean generation time."""
    path = Path(path)
    _check_suffix(path)
    check_output_path(path, "a picture")  # before drawing: a bad path fails at once
    plt = _pyplot()
    pos = _layout(network)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for link in network.links:
        (x1, y1), (x2, y2) = pos[link.a], pos[link.b]
        ax.plot([x1, x2], [y1, y2], color="#888888", lw=2, zorder=1)
        label = f"F={link.fidelity:g}\nlat {link.latency * 1e6:.3g} µs"
        if link.attempt_time:
            label += f"\ngen {link.mean_generation_time * 1e6:.3g} µs"
        ax.text((x1 + x2) / 2, (y1 + y2) / 2, label, fontsize=8, ha="center", va="center",
                bbox=dict(boxstyle="round", fc="white", ec="#bbbbbb"), zorder=3)
    for name, node in network.nodes.items():
        x, y = pos[name]
        if node.repeater:
            text, style = f"{name}\nrepeater, {node.comm_qubits} comm", "round4"
        else:
            text, style = f"{name}\n{node.data_qubits} data, {node.comm_qubits} comm", "round"
        ax.text(x, y, text, fontsize=9, ha="center", va="center", zorder=4,
                bbox=dict(boxstyle=style, fc="#dbe8f6" if not node.repeater else "#f6e7d6",
                          ec="#333333"))
    ax.set_title(title or f"network {network.name}")
    ax.axis("off")
    ax.margins(0.25)
    fig.tight_layout()
    _save(fig, path, plt)
    return path


def plot_schedule(events: Sequence[Event], path: str | Path, qubit_node: Sequence[str] = (),
                  title: str | None = None) -> Path:
    """Gantt chart: one row per physical qubit (grouped by node) with EPR generation, gates,
    measurements and waits of live qubits; classical messages as arrows between nodes' rows.
    Zero-length operations are drawn as thin ticks."""
    path = Path(path)
    _check_suffix(path)
    check_output_path(path, "a picture")  # before drawing: a bad path fails at once
    plt = _pyplot()
    qubits = sorted({q for e in events for q in e.qubits},
                    key=lambda q: (qubit_node[q] if q < len(qubit_node) else "", q))
    node_of = {q: qubit_node[q] if q < len(qubit_node) else
               next(e.node for e in events if q in e.qubits) for q in qubits}
    row = {q: i for i, q in enumerate(qubits)}
    end = max([e.end for e in events] + [0.0])
    scale, unit = _time_unit(end)
    tick = max(end * scale, 1e-12) * 0.004
    legend_band = 0.25                       # inches below the axes kept for the legend
    height = 1.2 + legend_band + 0.32 * max(len(qubits), 1)
    fig, ax = plt.subplots(figsize=(10, height))
    for e in events:
        if e.kind == "message":
            continue
        for q in e.qubits:
            width = max((e.end - e.start) * scale, tick)
            ax.broken_barh([(e.start * scale, width)], (row[q] - 0.35, 0.7),
                           facecolors=_COLOURS[e.kind], edgecolor="none", zorder=2)
    first_row: dict[str, int] = {}
    for q in qubits:
        first_row.setdefault(node_of[q], row[q])
    for e in events:
        if e.kind == "message" and e.node in first_row and e.peer in first_row:
            ax.annotate("", xy=(e.end * scale, first_row[e.peer]),
                        xytext=(e.start * scale, first_row[e.node]),
                        arrowprops=dict(arrowstyle="->", color=_COLOURS["message"], lw=0.8),
                        zorder=3)
    ax.set_yticks(range(len(qubits)))
    ax.set_yticklabels([f"{node_of[q]} q{q}" for q in qubits], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"time ({unit})")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLOURS.values()]
    # the legend goes in a band of the figure under the axes (and their time label), so that
    # it never covers a bar
    fig.legend(handles, ["EPR generation", "gate", "measure", "wait (live)",
                         "classical message"], fontsize=7, loc="lower center", ncol=5,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    ax.set_title(title or "schedule")
    ax.grid(axis="x", color="#eeeeee", zorder=0)
    fig.tight_layout(rect=(0.0, legend_band / height, 1.0, 1.0))
    _save(fig, path, plt)
    return path


def _time_unit(end: float) -> tuple[float, str]:
    for scale, unit in ((1e9, "ns"), (1e6, "µs"), (1e3, "ms")):
        if end * scale < 5000:
            return scale, unit
    return 1.0, "s"


def _save(fig, path: Path, plt) -> None:
    """Write atomically through :func:`qsim_dist.io.files.atomic_write` (a regular file only;
    a full disk is one OutputFileError, the previous picture kept, no temporary left)."""
    from ..io.files import OutputFileError, atomic_write

    try:
        with atomic_write(path, "a picture", OutputFileError) as out:
            # the temporary file has no suffix: name the format
            fig.savefig(out, dpi=150, format=path.suffix[1:].lower())
    finally:
        plt.close(fig)
