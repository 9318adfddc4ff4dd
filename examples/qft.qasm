// Period finding with the quantum Fourier transform (5 qubits).
// Input: the uniform superposition of x = 0, 4, 8, ..., 28 (period 4: H on qubits 2..4).
// The QFT (with the final swaps, as Qiskit's QFT) maps it onto multiples of 32/4 = 8:
// counts are '00000', '01000', '10000', '11000', about a quarter each.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[5];
creg c[5];
h q[2];
h q[3];
h q[4];
barrier q;
h q[4];
cp(pi/2) q[3], q[4];
cp(pi/4) q[2], q[4];
cp(pi/8) q[1], q[4];
cp(pi/16) q[0], q[4];
h q[3];
cp(pi/2) q[2], q[3];
cp(pi/4) q[1], q[3];
cp(pi/8) q[0], q[3];
h q[2];
cp(pi/2) q[1], q[2];
cp(pi/4) q[0], q[2];
h q[1];
cp(pi/2) q[0], q[1];
h q[0];
swap q[0], q[4];
swap q[1], q[3];
barrier q;
measure q[0] -> c[0];
measure q[1] -> c[1];
measure q[2] -> c[2];
measure q[3] -> c[3];
measure q[4] -> c[4];
