OPENQASM 2.0;
include "qelib1.inc";
gate rzx(param0) q0,q1 { h q1; cx q0,q1; rz(param0) q1; cx q0,q1; h q1; }
gate ecr q0,q1 { s q0; sx q1; cx q0,q1; x q0; }
gate iswap q0,q1 { s q0; s q1; h q0; cx q0,q1; cx q1,q0; h q1; }
gate ryy(param0) q0,q1 { sxdg q0; sxdg q1; cx q0,q1; rz(param0) q1; cx q0,q1; sx q0; sx q1; }
gate circuit_181(param0) q0,q1,q2 { h q0; cx q0,q1; rz(param0) q1; ccx q0,q1,q2; }
qreg a[2];
qreg b[2];
creg m[2];
creg n[2];
h a[0];
cx a[0],b[0];
rzx(pi/3) a[1],b[1];
ecr a[0],a[1];
sx b[0];
rzz(0.25) a[0],b[1];
u(0.1,0.2,0.3) b[1];
p(-pi/8) a[1];
cswap a[0],b[0],b[1];
iswap a[0],b[0];
ryy(0.4) a[1],b[0];
circuit_181(1.2345678901234567) b[1],a[0],a[1];
barrier a[0],a[1],b[0],b[1];
measure a[0] -> m[0];
measure a[1] -> m[1];
measure b[0] -> n[0];
measure b[1] -> n[1];
