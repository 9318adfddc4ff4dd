OPENQASM 3.0;
include "stdgates.inc";

// A repeat-until-success style program with mid-circuit measurement and feed-forward.
const float theta = π / 8;

gate prep(a) x, y {
    ry(a) x;
    ctrl @ x x, y;
    gphase(-a / 2);
}

qubit[3] q;
qubit anc;
bit[2] c;
bit flag;

prep(2 * theta) q[0], q[1];
inv @ s q[2];
pow(2) @ t q[2];
h anc;
c[0] = measure q[0];
c[1] = measure q[1];
if (c[0]) {
    x q[0];
    h q[2];
}
if (c[1] == 1) x q[1];
if (c == 3) {
    rz(-theta) q[2];
    cx q[2], anc;
}
if (!flag) z anc;
flag = measure anc;
reset anc;
