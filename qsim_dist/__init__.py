"""qsim_dist: exact simulation of distributed quantum computers and large circuits.

Import is cheap: JAX, numba and MPI are loaded only when a backend that needs them runs.
"""

from .circuit import Circuit, Condition, Instruction, Register
from .errors import QsimDistError
from .network.distribute import distribute

from .version import __version__

__all__ = ["Circuit", "Condition", "Instruction", "Register", "QsimDistError", "__version__",
           "distribute"]
