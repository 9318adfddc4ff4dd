"""Circuit input and output: OpenQASM 2/3 (:mod:`.qasm`), Qiskit and Cirq (:mod:`.convert`),
results files (:mod:`.hdf5`, imported on its own since it needs h5py).

Importing this package is cheap: the OpenQASM parser, Qiskit and Cirq load on first use.
"""

from .convert import from_cirq, from_qiskit, to_qiskit
from .qasm import dump, dumps, load, loads

__all__ = ["load", "loads", "dump", "dumps", "from_qiskit", "to_qiskit", "from_cirq"]
