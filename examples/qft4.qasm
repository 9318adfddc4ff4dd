// Period finding with the quantum Fourier transform on 4 qubits (one per node of
// examples/network_ring.toml). Input: the uniform superposition of x = 0, 4, 8, 12 (period 4:
// H on qubits 2 and 3). The QFT (with the final swaps) maps it onto multiples of 16/4 = 4:
// counts are '0000', '0100', '1000', '1100', about a quarter each.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
h q[2];
h q[3];
barrier q;
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
swap q[0], q[3];
swap q[1], q[2];
barrier q;
measure q[0] -> c[0];
measure q[1] -> c[1];
measure q[2] -> c[2];
measure q[3] -> c[3];
