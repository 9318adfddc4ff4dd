"""The one exception hierarchy. The CLI turns any QsimDistError into one line and exit status 2."""


class QsimDistError(Exception):
    """Base of every error a user can cause (bad input, bad options, impossible requests)."""


class CircuitError(QsimDistError):
    """A circuit is malformed: unknown gate, qubit out of range, repeated qubit, wrong arity."""


class QasmError(CircuitError):
    """An OpenQASM source cannot be read or does not describe a valid circuit."""


class OptionError(QsimDistError):
    """An option has a value outside what it accepts (negative shots, unknown precision, ...)."""


class BackendError(QsimDistError):
    """A backend cannot run the request (unknown backend, not enough memory, ...)."""
