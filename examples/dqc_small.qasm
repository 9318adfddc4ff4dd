// A small 4-qubit circuit for the network examples: a GHZ state with a twist
OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
h q[0];
cx q[0], q[1];
cx q[1], q[2];
cp(pi/4) q[0], q[3];
cx q[2], q[3];
ry(0.3) q[3];
measure q -> c;
