// Name of Experiment: adder_n4 + teleportation tail, QASMBench style
// Ripple-carry adder: computes a + b for a = 1, b = 1 (result 2 in b with carry-out)
OPENQASM 2.0;
include "qelib1.inc";
qreg cin[1];
qreg a[1];
qreg b[1];
qreg cout[1];
qreg tel[3];
creg ans[2];
creg c0[1];
creg c1[1];
creg c2[1];
// input state a = 1, b = 1
x a[0];
x b[0];
// majority
cx a[0],b[0];
cx a[0],cin[0];
ccx cin[0],b[0],a[0];
// carry out
cx a[0],cout[0];
// unmajority and add
ccx cin[0],b[0],a[0];
cx a[0],cin[0];
cx cin[0],b[0];
measure b[0] -> ans[0];
measure cout[0] -> ans[1];
// teleport an rx-rotated state from tel[0] to tel[2]
rx(0.7) tel[0];
h tel[1];
cx tel[1],tel[2];
barrier tel;
cx tel[0],tel[1];
h tel[0];
measure tel[0] -> c0[0];
measure tel[1] -> c1[0];
if(c0==1) z tel[2];
if(c1==1) x tel[2];
measure tel[2] -> c2[0];
