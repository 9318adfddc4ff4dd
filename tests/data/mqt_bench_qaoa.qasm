// Benchmark was created by MQT Bench on 2024-03-17
// For more information about MQT Bench, please visit https://www.cda.cit.tum.de/mqtbench/
// MQT Bench version: 1.1.0
// Qiskit version: 1.0.2

OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg meas[4];
h q[0];
h q[1];
h q[2];
h q[3];
rzz(-0.8471285629458392) q[0],q[1];
rzz(-0.8471285629458392) q[1],q[2];
rzz(-0.8471285629458392) q[2],q[3];
rzz(-0.8471285629458392) q[3],q[0];
sx q[0];
p(1.2087468447196433) q[1];
cp(pi/2) q[1],q[0];
cp(pi/4) q[2],q[0];
sx q[2];
rz(-pi/2) q[3];
u2(0,pi) q[3];
u3(pi/2,-pi/4,3*pi/4) q[2];
barrier q[0],q[1],q[2],q[3];
measure q[0] -> meas[0];
measure q[1] -> meas[1];
measure q[2] -> meas[2];
measure q[3] -> meas[3];
