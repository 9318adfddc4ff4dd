"""Draw docs/layers.svg, the picture of docs/architecture.md: ``python docs/draw_layers.py [OUT]``.

The layers are read from the import-linter ``layers`` contract in ``pyproject.toml``
(``[tool.importlinter]``), the rules ``lint-imports`` checks in CI, so the picture cannot drift
from them; rerun this script when the contract changes (matplotlib, the ``plot`` extra). Imports
that break the contract are drawn only when listed in BROKEN, which stays empty while
``lint-imports`` reports every contract kept.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "qsim_dist."

# one line on each module of a layer: what it is (the layout table of docs/architecture.md)
WHAT = {
    "cli": "qsim-dist run | dqc | info",
    "mpi_launch": "agree, run_main, GPU binding",
    "dqc": "the network meets the engine",
    "network": "the model: no backend",
    "backends": "State, executor, registry",
    "autodiff": "JAX grad / vmap",
    "yardstick": "independent check",
    "comm": "MPI of a run",
    "options": "RunOptions",
    "noise": "channels, models",
    "passes": "fusion, layout, decompose",
    "io": "qasm, convert, hdf5, files",
    "library": "standard circuits",
    "observables": "Pauli sums",
    "circuit": "the IR",
    "gates": "the gate table",
    "linalg": "dense algebra",
    "validation": "user input",
    "memory": "the memory check",
    "results": "Result",
    "kernels": "cpu, jax, batched_cpu",
    "errors": "exceptions",
    "version": "__version__",
}
# (importer, imported): imports that break the contract, as `lint-imports` reports them;
# none today (every contract kept)
BROKEN: list[tuple[str, str]] = []

ROW, GAP = 36, 8  # box height, space between rows
LEFT, RIGHT = 150, 860  # the boxes' span


def contract_layers(pyproject: Path = ROOT / "pyproject.toml") -> list[list[str]]:
    """The layers of the ``layers`` contract, top first, each a list of module names without
    the package prefix (``"a | b"`` is one layer of independent modules); none without one."""
    if not pyproject.exists():
        return []
    config = tomllib.loads(pyproject.read_text()).get("tool", {}).get("importlinter", {})
    for contract in config.get("contracts", []):
        if contract.get("type") == "layers":
            return [[m.strip().removeprefix(PACKAGE) for m in layer.split("|")]
                    for layer in contract["layers"]]
    return []


def main(out: Path = Path(__file__).with_name("layers.svg")) -> None:
    layers = contract_layers()
    if not layers:
        raise SystemExit("no [tool.importlinter] layers contract in pyproject.toml")
    plt.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG
    top = 40
    bottom = top + len(layers) * (ROW + GAP)
    legend = [
        "A module imports only modules of the layers below its own; modules side by side in",
        "one row never import each other. Checked by lint-imports in CI (pyproject.toml,",
        "[tool.importlinter]), with no sibling circles and the yardstick kept independent.",
    ] + [f"broken: {a} imports {b}" for a, b in BROKEN]
    height = bottom + 20 + 18 * len(legend)
    fig = plt.figure(figsize=(9, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 900)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.text(450, 18, "qsim_dist layers: a module imports only from the layers below it",
            ha="center", va="center", fontsize=12, color="#333")
    for i, modules in enumerate(layers):
        y = top + i * (ROW + GAP)
        width = (RIGHT - LEFT - GAP * (len(modules) - 1)) / len(modules)
        for j, module in enumerate(modules):
            x0 = LEFT + j * (width + GAP)
            ax.add_patch(FancyBboxPatch((x0, y), width, ROW,
                                        boxstyle="round,pad=0,rounding_size=6",
                                        fc="#eef3fb", ec="#4a6fa5", lw=1.2))
            cx = x0 + width / 2
            ax.text(cx, y + 12, module, ha="center", va="center", fontsize=10,
                    fontweight="bold", color="#1d2b3a")
            ax.text(cx, y + 27, WHAT.get(module, ""), ha="center", va="center", fontsize=7.5,
                    color="#34495e")
    ax.add_patch(FancyArrowPatch((80, top), (80, bottom - GAP), arrowstyle="-|>",
                                 mutation_scale=16, color="#777", lw=2))
    ax.text(64, (top + bottom) / 2, "imports point down", rotation=90, ha="center",
            va="center", fontsize=10, color="#555")
    for k, line in enumerate(legend):
        ax.text(30, bottom + 14 + 18 * k, line, ha="left", va="center", fontsize=8.5,
                color="#c0392b" if line.startswith("broken") else "#222")
    fig.savefig(out, format=out.suffix[1:])
    plt.close(fig)


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("layers.svg"))
