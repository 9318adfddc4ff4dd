"""Draw docs/layers.svg, the picture of docs/architecture.md: ``python docs/draw_layers.py``.

The layers are the rules of docs/architecture.md; the red arrows are the imports that break them
today. Edit ROWS and BROKEN when the code changes, and rerun (matplotlib, the ``plot`` extra).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

H = 44  # box height
ROWS = [  # top (y) of each layer, its boxes: x0, x1, title, detail
    (30, [(200, 700, "cli.py  ·  network/cli.py  ·  mpi_launch/",
           "qsim-dist run | dqc | info; the MPI launcher (agree, run_main)")]),
    (94, [(200, 700, "network/   (the model: imports no backend)",
           "topology, program, protocols, runtime, nodes, lowering, naive, report, plots")]),
    (158, [(200, 700, "backends/  ·  comm.py",
            "base (State, the executor), reference, statevector, distributed; MPI")]),
    (222, [(200, 700, "kernels/   (imports only errors)",
            "cpu (C/OpenMP), batched_cpu (numba), jax_xla, shard")]),
    (286, [(200, 350, "io/", "qasm, convert, hdf5,\ncheckpoint, files, toml"),
           (380, 530, "noise.py", "channels, models,\nlowering"),
           (560, 700, "passes/", "fusion, layout,\ndecompose, distribute")]),
    (350, [(200, 700, "circuit.py  ·  library.py  ·  observables.py",
            "the IR, standard circuits, Pauli sums")]),
    (414, [(200, 700, "gates.py", "the gate table")]),
    (478, [(200, 700, "validation.py  ·  memory.py  ·  results.py",
            "checks of user input, the memory check, Result")]),
    (542, [(200, 700, "errors.py", "QsimDistError and its subclasses")]),
]
RED = "#c0392b"
BROKEN = [  # number, path of the arrow (x, y points), where its number stands, dashed
    (1, [(700, 436), (735, 436), (735, 184), (702, 184)], (735, 395), False),
    (2, [(200, 308), (165, 308), (165, 184), (198, 184)], (165, 246), False),
    (3, [(300, 222), (300, 202)], (282, 212), False),
    (4, [(380, 308), (352, 308)], (366, 340), False),
    (5, [(700, 308), (775, 308), (775, 116), (702, 116)], (775, 210), False),
    (6, [(600, 138), (600, 158)], (618, 148), True),
    (7, None, (725, 52), False),
    (8, None, (182, 116), False),
]
LEGEND = [
    "Red: where the code breaks these rules today (lazy imports inside functions included)",
    "1  gates.py imports backends/reference.py (apply_unitary): a circle of gates, circuit, "
    "backends/base, backends/reference, noise, io/convert",
    "2  io/qasm.py imports backends/reference.py (apply_unitary)",
    "3  kernels/jax_xla.py imports backends/reference.py (marginal_probabilities)",
    "4  noise.py imports io/convert.py (_FROM_QISKIT_NAME, closing circle 1) and io/toml.py",
    "5  passes/decompose.py and passes/distribute.py import network/ (program, topology, lowering)",
    "6  network/lowering.py and network/report.py import backends (get_backend)",
    "7  cli.py and network/cli.py import each other (network/cli.py uses cli.py's private names)",
    "8  network/protocols.py and network/runtime.py import each other (runtime.py lazily)",
]


def main(out: Path = Path(__file__).with_name("layers.svg")) -> None:
    plt.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG
    fig = plt.figure(figsize=(9, 8.2), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 900)
    ax.set_ylim(820, 0)
    ax.axis("off")
    ax.text(450, 14, "qsim_dist layers: a module imports only from the layers below it",
            ha="center", va="center", fontsize=12, color="#333")
    for y, boxes in ROWS:
        for x0, x1, title, detail in boxes:
            ax.add_patch(FancyBboxPatch((x0, y), x1 - x0, H, boxstyle="round,pad=0,rounding_size=6",
                                        fc="#eef3fb", ec="#4a6fa5", lw=1.2))
            cx = (x0 + x1) / 2
            two = "\n" in detail
            ax.text(cx, y + (12 if two else 16), title, ha="center", va="center", fontsize=10,
                    fontweight="bold", color="#1d2b3a")
            ax.text(cx, y + (31 if two else 32), detail, ha="center", va="center",
                    fontsize=7.5 if two else 8.5, color="#34495e", linespacing=1.1)
    ax.add_patch(FancyArrowPatch((80, 40), (80, 580), arrowstyle="-|>", mutation_scale=16,
                                 color="#777", lw=2))
    ax.text(64, 310, "imports point down", rotation=90, ha="center", va="center",
            fontsize=10, color="#555")
    for number, path, (lx, ly), dashed in BROKEN:
        if path:
            xs, ys = zip(*path)
            ax.plot(xs[:-1], ys[:-1], color=RED, lw=1.8, ls="--" if dashed else "-")
            ax.add_patch(FancyArrowPatch(path[-2], path[-1], arrowstyle="-|>", mutation_scale=12,
                                         color=RED, lw=1.8, ls="--" if dashed else "-",
                                         shrinkA=0, shrinkB=0))
        ax.add_patch(plt.Circle((lx, ly), 9, color=RED, zorder=5))
        ax.text(lx, ly, str(number), ha="center", va="center", fontsize=8, color="white",
                fontweight="bold", zorder=6)
    for i, line in enumerate(LEGEND):
        ax.text(30, 612 + 21 * i, line, ha="left", va="center", fontsize=8.2,
                fontweight="bold" if i == 0 else "normal", color="#222")
    fig.savefig(out, format=out.suffix[1:])
    plt.close(fig)


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("layers.svg"))
