/* qsim_dist.kernels._cpu: the CPU state kernels, compiled ahead of time.
 *
 * Parallel loops (OpenMP) update a complex64 or complex128 state in place. Being ordinary machine
 * code loaded with the module, they need no JIT runtime: a simulation holds the state and a few
 * KiB of tiles per thread, nothing else (numba's first call alone costs ~60 MiB). The hot loops
 * are compiled twice on x86-64 (AVX2+FMA and baseline) and the CPU picks at load time.
 *
 * The Python side (kernels/cpu.py) hands in numpy arrays of the right types; every entry point
 * checks them (C-contiguous, writable where written, matching precision) and releases the GIL. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define TILE 64                   /* groups per tile: two 16 x 2 x 64 buffers stay in L1 */
#define DMAX 16                   /* the tile kernel's largest block (4 qubits) */
#define RUN 256                   /* amplitude pairs per work item of the one-qubit kernel */
#define SERIAL_BELOW (1 << 16)    /* smaller states: one thread (a parallel start costs more) */

/* Spread the bits of i around the sorted qubit positions q[0..k), which read 0. */
static inline int64_t insert_zero_bits(int64_t i, const int64_t *q, int k)
{
    for (int b = 0; b < k; b++) {
        const int64_t low = i & (((int64_t)1 << q[b]) - 1);
        i = ((i >> q[b]) << (q[b] + 1)) | low;
    }
    return i;
}

/* The largest power of two dividing v > 0. */
static inline int64_t lowest_bit(int64_t v) { return v & -v; }

/* The first d with draws[d] * total >= value (draws sorted ascending). */
static int64_t first_at_least(const double *draws, int64_t n, double total, double value)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (draws[mid] * total < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#define R float
#define FN(x) x##_f
#include "_cpu_kernels.h"
#undef R
#undef FN
#define R double
#define FN(x) x##_d
#include "_cpu_kernels.h"
#undef R
#undef FN

/* ---- argument checking ------------------------------------------------------------------ */

/* A C-contiguous buffer of ``obj``; 1 for complex128/float64, 0 for complex64/float32, -1 with
 * TypeError set. ``kind`` is 'Z' for complex or 'r' for real elements. */
static int get_array(PyObject *obj, Py_buffer *view, int writable, char kind, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int is_double = -1;
    if (kind == 'Z') {
        if (!strcmp(f, "Zf")) is_double = 0;
        if (!strcmp(f, "Zd")) is_double = 1;
    } else {
        if (!strcmp(f, "f")) is_double = 0;
        if (!strcmp(f, "d")) is_double = 1;
    }
    if (is_double < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected %s elements, got format '%s'", what,
                     kind == 'Z' ? "complex64 or complex128" : "float32 or float64", f);
        PyBuffer_Release(view);
    }
    return is_double;
}

static int get_int64s(PyObject *obj, Py_buffer *view, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->itemsize != 8 || !view->format || !strchr("lqLQ", view->format[strlen(view->format) - 1])) {
        PyErr_Format(PyExc_TypeError, "%s: expected int64 elements", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The state's amplitude count and its qubits' validity: inside the state, distinct, and ascending
 * where ``sorted``. A state may be a batch of rows (kernels/__init__.py): its length is then
 * rows x 2^n, rows a multiple of 64, and its qubits are the bits below the lowest set bit. */
static int check_qubits(const Py_buffer *state, int is_double, const int64_t *q, Py_ssize_t k,
                        int sorted, int64_t *n_amp)
{
    *n_amp = (int64_t)(state->len / (is_double ? 16 : 8));
    if (*n_amp < 1) {
        PyErr_SetString(PyExc_ValueError, "empty state");
        return -1;
    }
    const int n = __builtin_ctzll((unsigned long long)*n_amp);
    for (Py_ssize_t j = 0; j < k; j++) {
        int bad = q[j] < 0 || q[j] >= n || (sorted && j && q[j] <= q[j - 1]);
        for (Py_ssize_t i = 0; i < j && !bad; i++) bad = q[i] == q[j];
        if (bad) {
            PyErr_Format(PyExc_ValueError, "qubits must be distinct%s and inside the state",
                         sorted ? ", ascending" : "");
            return -1;
        }
    }
    return 0;
}

/* ---- entry points ----------------------------------------------------------------------- */

static PyObject *py_apply_block(PyObject *args, int diagonal)
{
    PyObject *so, *ro, *io, *qo;
    if (!PyArg_ParseTuple(args, "OOOO", &so, &ro, &io, &qo)) return NULL;
    Py_buffer s, re, im, q;
    int dbl = get_array(so, &s, 1, 'Z', "state");
    if (dbl < 0) return NULL;
    int r_dbl = get_array(ro, &re, 0, 'r', "real part");
    if (r_dbl < 0) goto fail_s;
    int i_dbl = get_array(io, &im, 0, 'r', "imaginary part");
    if (i_dbl < 0) goto fail_re;
    if (get_int64s(qo, &q, 0, "qubits") < 0) goto fail_im;
    const Py_ssize_t k = q.len / 8;
    const int64_t *qs = q.buf;
    int64_t n_amp;
    if (r_dbl != dbl || i_dbl != dbl) {
        PyErr_SetString(PyExc_TypeError, "matrix precision differs from the state's");
        goto fail_q;
    }
    if (k > 20) {
        PyErr_SetString(PyExc_ValueError, "blocks of more than 20 qubits are not supported");
        goto fail_q;
    }
    if (check_qubits(&s, dbl, qs, k, 1, &n_amp) < 0) goto fail_q;
    const Py_ssize_t entries = (Py_ssize_t)1 << (diagonal ? k : 2 * k);  /* k <= 20 here */
    if (re.len != entries * re.itemsize || im.len != entries * im.itemsize) {
        PyErr_SetString(PyExc_ValueError, "matrix size does not match the qubit count");
        goto fail_q;
    }
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    if (diagonal || k == 0) {  /* no qubits: a 1 x 1 matrix is a diagonal, one factor for all */
        if (dbl) apply_diagonal_d(s.buf, n_amp, re.buf, im.buf, qs, (int)k);
        else apply_diagonal_f(s.buf, n_amp, re.buf, im.buf, qs, (int)k);
    } else if (k == 1) {
        if (dbl) {
            const double *a = re.buf, *b = im.buf;
            double m[8] = {a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]};
            apply_1q_d(s.buf, n_amp, m, (int)qs[0]);
        } else {
            const float *a = re.buf, *b = im.buf;
            float m[8] = {a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]};
            apply_1q_f(s.buf, n_amp, m, (int)qs[0]);
        }
    } else {
        rc = dbl ? apply_dense_d(s.buf, n_amp, re.buf, im.buf, qs, (int)k)
                 : apply_dense_f(s.buf, n_amp, re.buf, im.buf, qs, (int)k);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&q);
    PyBuffer_Release(&im);
    PyBuffer_Release(&re);
    PyBuffer_Release(&s);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail_q:
    PyBuffer_Release(&q);
fail_im:
    PyBuffer_Release(&im);
fail_re:
    PyBuffer_Release(&re);
fail_s:
    PyBuffer_Release(&s);
    return NULL;
}

static PyObject *py_apply_dense(PyObject *self, PyObject *args) { return py_apply_block(args, 0); }
static PyObject *py_apply_diagonal(PyObject *self, PyObject *args) { return py_apply_block(args, 1); }

static PyObject *py_probabilities(PyObject *self, PyObject *args)
{
    PyObject *so, *oo;
    if (!PyArg_ParseTuple(args, "OO", &so, &oo)) return NULL;
    Py_buffer s, out;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    int o_dbl = get_array(oo, &out, 1, 'r', "out");
    if (o_dbl < 0) { PyBuffer_Release(&s); return NULL; }
    int64_t n_amp = (int64_t)(s.len / (dbl ? 16 : 8));
    if (o_dbl != 1 || out.len != n_amp * 8) {
        PyErr_SetString(PyExc_ValueError, "out must be float64 with one entry per amplitude");
        PyBuffer_Release(&out);
        PyBuffer_Release(&s);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (dbl) probabilities_d(s.buf, n_amp, out.buf);
    else probabilities_f(s.buf, n_amp, out.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&s);
    Py_RETURN_NONE;
}

static PyObject *py_qubit_one_probability(PyObject *self, PyObject *args)
{
    PyObject *so;
    long long q;
    if (!PyArg_ParseTuple(args, "OL", &so, &q)) return NULL;
    Py_buffer s;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    int64_t n_amp, qq = q;
    if (check_qubits(&s, dbl, &qq, 1, 1, &n_amp) < 0) { PyBuffer_Release(&s); return NULL; }
    double p;
    Py_BEGIN_ALLOW_THREADS
    p = dbl ? qubit_one_probability_d(s.buf, n_amp, (int)q)
            : qubit_one_probability_f(s.buf, n_amp, (int)q);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&s);
    return PyFloat_FromDouble(p);
}

static PyObject *py_collapse(PyObject *self, PyObject *args)
{
    PyObject *so;
    long long q;
    int outcome;
    double scale;
    if (!PyArg_ParseTuple(args, "OLpd", &so, &q, &outcome, &scale)) return NULL;
    Py_buffer s;
    int dbl = get_array(so, &s, 1, 'Z', "state");
    if (dbl < 0) return NULL;
    int64_t n_amp, qq = q;
    if (check_qubits(&s, dbl, &qq, 1, 1, &n_amp) < 0) { PyBuffer_Release(&s); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    if (dbl) collapse_d(s.buf, n_amp, (int)q, outcome, scale);
    else collapse_f(s.buf, n_amp, (int)q, outcome, (float)scale);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&s);
    Py_RETURN_NONE;
}

static PyObject *py_pauli_expectation(PyObject *self, PyObject *args)
{
    PyObject *so;
    long long x, z;
    if (!PyArg_ParseTuple(args, "OLL", &so, &x, &z)) return NULL;
    Py_buffer s;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    int64_t n_amp;
    if (check_qubits(&s, dbl, NULL, 0, 1, &n_amp) < 0) { PyBuffer_Release(&s); return NULL; }
    const int64_t whole = n_amp & -n_amp;  /* 2^(qubits the state holds whole) */
    if (x < 0 || x >= whole || z < 0 || z >= whole) {
        PyErr_SetString(PyExc_ValueError, "Pauli masks reach past the state");
        PyBuffer_Release(&s);
        return NULL;
    }
    double re, im;
    Py_BEGIN_ALLOW_THREADS
    if (dbl) pauli_expectation_d(s.buf, n_amp, x, z, &re, &im);
    else pauli_expectation_f(s.buf, n_amp, x, z, &re, &im);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&s);
    return PyComplex_FromDoubles(re, im);
}

static PyObject *py_marginal(PyObject *self, PyObject *args)
{
    PyObject *so, *qo, *oo;
    if (!PyArg_ParseTuple(args, "OOO", &so, &qo, &oo)) return NULL;
    Py_buffer s, q, out;
    PyObject *result = NULL;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    if (get_int64s(qo, &q, 0, "qubits") < 0) { PyBuffer_Release(&s); return NULL; }
    int o_dbl = get_array(oo, &out, 1, 'r', "out");
    if (o_dbl < 0) { PyBuffer_Release(&q); PyBuffer_Release(&s); return NULL; }
    const Py_ssize_t k = q.len / 8;
    int64_t n_amp;
    if (check_qubits(&s, dbl, q.buf, k, 0, &n_amp) == 0) {
        if (o_dbl != 1 || out.len != ((Py_ssize_t)8 << k)) {
            PyErr_SetString(PyExc_ValueError, "out must be float64 with 2^k entries");
        } else {
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = dbl ? marginal_d(s.buf, n_amp, q.buf, (int)k, out.buf)
                     : marginal_f(s.buf, n_amp, q.buf, (int)k, out.buf);
            Py_END_ALLOW_THREADS
            if (rc < 0) PyErr_NoMemory();
            else result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&q);
    PyBuffer_Release(&s);
    return result;
}

static PyObject *py_sample_sorted(PyObject *self, PyObject *args)
{
    PyObject *so, *d_o, *oo;
    if (!PyArg_ParseTuple(args, "OOO", &so, &d_o, &oo)) return NULL;
    Py_buffer s, d, out;
    PyObject *result = NULL;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    int d_dbl = get_array(d_o, &d, 0, 'r', "draws");
    if (d_dbl < 0) { PyBuffer_Release(&s); return NULL; }
    if (get_int64s(oo, &out, 1, "out") < 0) { PyBuffer_Release(&d); PyBuffer_Release(&s); return NULL; }
    int64_t n_amp;
    if (d_dbl != 1 || out.len != d.len) {
        PyErr_SetString(PyExc_ValueError, "draws must be float64 and out int64, of one length");
    } else if (check_qubits(&s, dbl, NULL, 0, 1, &n_amp) == 0) {
        const int64_t n_draws = (int64_t)(d.len / 8);
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = dbl ? sample_sorted_d(s.buf, n_amp, d.buf, n_draws, out.buf)
                 : sample_sorted_f(s.buf, n_amp, d.buf, n_draws, out.buf);
        Py_END_ALLOW_THREADS
        if (rc < 0) PyErr_NoMemory();
        else result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&d);
    PyBuffer_Release(&s);
    return result;
}

/* insert_qubit(src, dst, slot, value) / extract_qubit(src, dst, slot, value): dst is twice /
 * half src's length (zeroed by the caller for insert), of src's precision. */
static PyObject *py_resize(PyObject *args, int insert)
{
    PyObject *so, *d_o;
    int slot, value;
    if (!PyArg_ParseTuple(args, "OOii", &so, &d_o, &slot, &value)) return NULL;
    Py_buffer s, d;
    PyObject *result = NULL;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    int d_dbl = get_array(d_o, &d, 1, 'Z', "out");
    if (d_dbl < 0) { PyBuffer_Release(&s); return NULL; }
    int64_t n_src, n_dst;
    const int64_t q = slot;
    if (d_dbl != dbl) {
        PyErr_SetString(PyExc_TypeError, "out precision differs from the state's");
    } else if (value != 0 && value != 1) {
        PyErr_SetString(PyExc_ValueError, "value must be 0 or 1");
    } else if (check_qubits(&d, dbl, NULL, 0, 1, &n_dst) == 0
               && check_qubits(&s, dbl, NULL, 0, 1, &n_src) == 0) {
        const int64_t n_small = insert ? n_src : n_dst;
        Py_buffer *big = insert ? &d : &s;
        int64_t n_big;
        if ((insert ? n_dst : n_src) != 2 * n_small || (n_small & (n_small - 1))) {
            PyErr_SetString(PyExc_ValueError, "out must be twice (insert) or half (extract) the "
                                              "state, a power of two");
        } else if (slot < 0 || check_qubits(big, dbl, &q, 1, 1, &n_big) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "slot outside the state");
        } else {
            Py_BEGIN_ALLOW_THREADS
            void *small = insert ? s.buf : d.buf;  /* extract writes small only */
            if (dbl) move_qubit_d(small, big->buf, n_small, slot, value, insert);
            else move_qubit_f(small, big->buf, n_small, slot, value, insert);
            Py_END_ALLOW_THREADS
            result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&d);
    PyBuffer_Release(&s);
    return result;
}

static PyObject *py_insert_qubit(PyObject *self, PyObject *args) { return py_resize(args, 1); }
static PyObject *py_extract_qubit(PyObject *self, PyObject *args) { return py_resize(args, 0); }

static PyObject *py_reduced_density_matrix(PyObject *self, PyObject *args)
{
    PyObject *so, *qo, *oo, *outo;
    if (!PyArg_ParseTuple(args, "OOOO", &so, &qo, &oo, &outo)) return NULL;
    Py_buffer s, q, offs, out;
    PyObject *result = NULL;
    int dbl = get_array(so, &s, 0, 'Z', "state");
    if (dbl < 0) return NULL;
    if (get_int64s(qo, &q, 0, "qubits") < 0) { PyBuffer_Release(&s); return NULL; }
    if (get_int64s(oo, &offs, 0, "offsets") < 0) {
        PyBuffer_Release(&q);
        PyBuffer_Release(&s);
        return NULL;
    }
    int o_dbl = get_array(outo, &out, 1, 'Z', "out");
    if (o_dbl < 0) {
        PyBuffer_Release(&offs);
        PyBuffer_Release(&q);
        PyBuffer_Release(&s);
        return NULL;
    }
    const Py_ssize_t k = q.len / 8;
    int64_t n_amp;
    if (k > 12) {
        PyErr_SetString(PyExc_ValueError, "reduced density matrices of more than 12 qubits are "
                                          "not supported");
    } else if (check_qubits(&s, dbl, q.buf, k, 1, &n_amp) == 0) {
        const int64_t dim = (int64_t)1 << k, *o = offs.buf, *qs = q.buf;
        int64_t mask = 0;  /* an offset may set only the qubits' bits */
        for (Py_ssize_t j = 0; j < k; j++) mask |= (int64_t)1 << qs[j];
        int bad = o_dbl != 1 || out.len != dim * dim * 16 || offs.len != dim * 8;
        for (int64_t r = 0; r < dim && !bad; r++) bad = (o[r] & ~mask) != 0;
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "offsets must be 2^k amplitude offsets inside a "
                                              "group, out complex128 of 4^k entries");
        } else {
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = dbl ? reduced_density_matrix_d(s.buf, n_amp, q.buf, (int)k, o, out.buf)
                     : reduced_density_matrix_f(s.buf, n_amp, q.buf, (int)k, o, out.buf);
            Py_END_ALLOW_THREADS
            if (rc < 0) PyErr_NoMemory();
            else result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&q);
    PyBuffer_Release(&s);
    return result;
}

/* ---- the adjoint method ------------------------------------------------------------------ */

/* The qubits of a controlled block: targets then controls (each sorted), checked against the
 * state (distinct, inside) and merged into one ascending list ``all`` (k of them); ``set``: the
 * controls' bits. */
static int controlled_qubits(const Py_buffer *state, int dbl, const Py_buffer *targets,
                             const Py_buffer *controls, int64_t *all, int *k, int64_t *set,
                             int64_t *n_amp)
{
    const Py_ssize_t m = targets->len / 8, c = controls->len / 8;
    if (m < 1 || m + c > 20) {
        PyErr_SetString(PyExc_ValueError, "a block needs 1 to 20 qubits, controls included");
        return -1;
    }
    const int64_t *t = targets->buf, *cs = controls->buf;
    int64_t both[20];
    for (Py_ssize_t j = 0; j < m; j++) both[j] = t[j];
    for (Py_ssize_t j = 0; j < c; j++) both[m + j] = cs[j];
    if (check_qubits(state, dbl, both, m + c, 0, n_amp) < 0) return -1;
    for (Py_ssize_t j = 1; j < m; j++)
        if (t[j] <= t[j - 1]) {
            PyErr_SetString(PyExc_ValueError, "target qubits must be ascending");
            return -1;
        }
    *set = 0;
    for (Py_ssize_t j = 0; j < c; j++) *set |= (int64_t)1 << cs[j];
    for (Py_ssize_t j = 0; j < m + c; j++) {  /* insertion sort of at most 20 */
        int64_t v = both[j];
        Py_ssize_t i = j;
        while (i > 0 && all[i - 1] > v) { all[i] = all[i - 1]; i--; }
        all[i] = v;
    }
    *k = (int)(m + c);
    return 0;
}

static PyObject *py_apply_controlled(PyObject *self, PyObject *args)
{
    PyObject *so, *ro, *io, *to, *co;
    if (!PyArg_ParseTuple(args, "OOOOO", &so, &ro, &io, &to, &co)) return NULL;
    Py_buffer s, re, im, t, c;
    PyObject *result = NULL;
    int dbl = get_array(so, &s, 1, 'Z', "state");
    if (dbl < 0) return NULL;
    int r_dbl = get_array(ro, &re, 0, 'r', "real part");
    if (r_dbl < 0) goto fail_s;
    int i_dbl = get_array(io, &im, 0, 'r', "imaginary part");
    if (i_dbl < 0) goto fail_re;
    if (get_int64s(to, &t, 0, "target") < 0) goto fail_im;
    if (get_int64s(co, &c, 0, "controls") < 0) goto fail_t;
    int64_t all[20], set, n_amp;
    int k;
    if (r_dbl != dbl || i_dbl != dbl) {
        PyErr_SetString(PyExc_TypeError, "matrix precision differs from the state's");
    } else if (t.len != 8) {
        PyErr_SetString(PyExc_ValueError, "a controlled block has one target qubit");
    } else if (re.len != 4 * re.itemsize || im.len != 4 * im.itemsize) {
        PyErr_SetString(PyExc_ValueError, "a controlled block's matrix is 2 x 2");
    } else if (controlled_qubits(&s, dbl, &t, &c, all, &k, &set, &n_amp) == 0) {
        const int target = (int)((const int64_t *)t.buf)[0];
        Py_BEGIN_ALLOW_THREADS
        if (dbl) {
            const double *a = re.buf, *b = im.buf;
            double m[8] = {a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]};
            apply_controlled_d(s.buf, n_amp, m, target, all, k, set);
        } else {
            const float *a = re.buf, *b = im.buf;
            float m[8] = {a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]};
            apply_controlled_f(s.buf, n_amp, m, target, all, k, set);
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&c);
fail_t:
    PyBuffer_Release(&t);
fail_im:
    PyBuffer_Release(&im);
fail_re:
    PyBuffer_Release(&re);
fail_s:
    PyBuffer_Release(&s);
    return result;
}

/* Two states of one precision and length, read only. */
static int get_two_states(PyObject *bo, PyObject *ko, Py_buffer *b, Py_buffer *k)
{
    int dbl = get_array(bo, b, 0, 'Z', "bra");
    if (dbl < 0) return -1;
    int k_dbl = get_array(ko, k, 0, 'Z', "ket");
    if (k_dbl < 0) {
        PyBuffer_Release(b);
        return -1;
    }
    if (k_dbl != dbl || k->len != b->len) {
        PyErr_SetString(PyExc_ValueError, "bra and ket must have one precision and length");
        PyBuffer_Release(k);
        PyBuffer_Release(b);
        return -1;
    }
    return dbl;
}

static PyObject *py_overlap(PyObject *self, PyObject *args)
{
    PyObject *bo, *ko, *to, *co, *oo;
    if (!PyArg_ParseTuple(args, "OOOOO", &bo, &ko, &to, &co, &oo)) return NULL;
    Py_buffer b, kt, t, c, out;
    PyObject *result = NULL;
    int dbl = get_two_states(bo, ko, &b, &kt);
    if (dbl < 0) return NULL;
    if (get_int64s(to, &t, 0, "qubits") < 0) goto fail_states;
    if (get_int64s(co, &c, 0, "controls") < 0) goto fail_t;
    int o_dbl = get_array(oo, &out, 1, 'Z', "out");
    if (o_dbl < 0) goto fail_c;
    int64_t all[20], set, n_amp;
    int k;
    const Py_ssize_t m = t.len / 8;
    if (m > 6) {
        PyErr_SetString(PyExc_ValueError, "overlaps on more than 6 qubits are not supported");
    } else if (controlled_qubits(&b, dbl, &t, &c, all, &k, &set, &n_amp) == 0) {
        const int64_t dim = (int64_t)1 << m, *ts = t.buf;
        if (o_dbl != 1 || out.len != dim * dim * 16) {
            PyErr_SetString(PyExc_ValueError, "out must be complex128 of 4^k entries");
        } else {
            int64_t offsets[64];
            for (int64_t r = 0; r < dim; r++) {
                offsets[r] = 0;
                for (Py_ssize_t j = 0; j < m; j++)
                    if ((r >> j) & 1) offsets[r] |= (int64_t)1 << ts[j];
            }
            int rc = 0;
            Py_BEGIN_ALLOW_THREADS
            if (m == 1) {
                if (dbl) overlap_1q_d(b.buf, kt.buf, n_amp, (int)ts[0], all, k, set, out.buf);
                else overlap_1q_f(b.buf, kt.buf, n_amp, (int)ts[0], all, k, set, out.buf);
            } else {
                rc = dbl ? overlap_dense_d(b.buf, kt.buf, n_amp, all, k, set, offsets, dim,
                                           out.buf)
                         : overlap_dense_f(b.buf, kt.buf, n_amp, all, k, set, offsets, dim,
                                           out.buf);
            }
            Py_END_ALLOW_THREADS
            if (rc < 0) PyErr_NoMemory();
            else result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&out);
fail_c:
    PyBuffer_Release(&c);
fail_t:
    PyBuffer_Release(&t);
fail_states:
    PyBuffer_Release(&kt);
    PyBuffer_Release(&b);
    return result;
}

static PyObject *py_overlap_diagonal(PyObject *self, PyObject *args)
{
    PyObject *bo, *ko, *qo, *oo;
    if (!PyArg_ParseTuple(args, "OOOO", &bo, &ko, &qo, &oo)) return NULL;
    Py_buffer b, kt, q, out;
    PyObject *result = NULL;
    int dbl = get_two_states(bo, ko, &b, &kt);
    if (dbl < 0) return NULL;
    if (get_int64s(qo, &q, 0, "qubits") < 0) goto fail_states;
    int o_dbl = get_array(oo, &out, 1, 'Z', "out");
    if (o_dbl < 0) goto fail_q;
    const Py_ssize_t k = q.len / 8;
    int64_t n_amp;
    if (k > 20) {
        PyErr_SetString(PyExc_ValueError, "tables of more than 20 qubits are not supported");
    } else if (check_qubits(&b, dbl, q.buf, k, 1, &n_amp) == 0) {
        if (o_dbl != 1 || out.len != ((Py_ssize_t)16 << k)) {
            PyErr_SetString(PyExc_ValueError, "out must be complex128 of 2^k entries");
        } else {
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = dbl ? overlap_diagonal_d(b.buf, kt.buf, n_amp, q.buf, (int)k, out.buf)
                     : overlap_diagonal_f(b.buf, kt.buf, n_amp, q.buf, (int)k, out.buf);
            Py_END_ALLOW_THREADS
            if (rc < 0) PyErr_NoMemory();
            else result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&out);
fail_q:
    PyBuffer_Release(&q);
fail_states:
    PyBuffer_Release(&kt);
    PyBuffer_Release(&b);
    return result;
}

static PyObject *py_add_pauli_terms(PyObject *self, PyObject *args)
{
    PyObject *oo, *so, *zo, *ro, *io;
    long long x;
    if (!PyArg_ParseTuple(args, "OOLOOO", &oo, &so, &x, &zo, &ro, &io)) return NULL;
    Py_buffer out, s, z, re, im;
    PyObject *result = NULL;
    int dbl = get_array(oo, &out, 1, 'Z', "out");
    if (dbl < 0) return NULL;
    int s_dbl = get_array(so, &s, 0, 'Z', "state");
    if (s_dbl < 0) goto fail_out;
    if (get_int64s(zo, &z, 0, "z masks") < 0) goto fail_s;
    int r_dbl = get_array(ro, &re, 0, 'r', "real parts");
    if (r_dbl < 0) goto fail_z;
    int i_dbl = get_array(io, &im, 0, 'r', "imaginary parts");
    if (i_dbl < 0) goto fail_re;
    int64_t n_amp;
    const Py_ssize_t terms = z.len / 8;
    if (s_dbl != dbl || s.len != out.len) {
        PyErr_SetString(PyExc_ValueError, "out and state must have one precision and length");
    } else if (s.buf == out.buf) {
        PyErr_SetString(PyExc_ValueError, "out must be another buffer than the state");
    } else if (r_dbl != 1 || i_dbl != 1 || re.len != terms * 8 || im.len != terms * 8) {
        PyErr_SetString(PyExc_ValueError, "coefficients: float64, one per z mask");
    } else if (check_qubits(&s, dbl, NULL, 0, 1, &n_amp) == 0) {
        const int64_t whole = n_amp & -n_amp, *zs = z.buf;
        int bad = x < 0 || x >= whole;
        for (Py_ssize_t j = 0; j < terms && !bad; j++) bad = zs[j] < 0 || zs[j] >= whole;
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "Pauli masks reach past the state");
        } else {
            double *cl = malloc(sizeof(double) * (size_t)(2 * TILE * (terms ? terms : 1)));
            if (!cl) {
                PyErr_NoMemory();
            } else {
                Py_BEGIN_ALLOW_THREADS
                if (dbl) add_pauli_terms_d(out.buf, s.buf, n_amp, x, zs, re.buf, im.buf,
                                           (int)terms, cl);
                else add_pauli_terms_f(out.buf, s.buf, n_amp, x, zs, re.buf, im.buf, (int)terms,
                                       cl);
                Py_END_ALLOW_THREADS
                free(cl);
                result = Py_NewRef(Py_None);
            }
        }
    }
    PyBuffer_Release(&im);
fail_re:
    PyBuffer_Release(&re);
fail_z:
    PyBuffer_Release(&z);
fail_s:
    PyBuffer_Release(&s);
fail_out:
    PyBuffer_Release(&out);
    return result;
}

static PyObject *py_set_num_threads(PyObject *self, PyObject *args)
{
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "thread count must be at least 1");
        return NULL;
    }
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *args)
{
#ifdef _OPENMP
    return PyLong_FromLong(omp_get_max_threads());
#else
    return PyLong_FromLong(1);
#endif
}

static PyMethodDef methods[] = {
    {"apply_dense", py_apply_dense, METH_VARARGS,
     "apply_dense(state, m_re, m_im, qubits): 2^k x 2^k matrix (row-major real and imaginary "
     "parts) on sorted int64 qubits, in place"},
    {"apply_diagonal", py_apply_diagonal, METH_VARARGS,
     "apply_diagonal(state, d_re, d_im, qubits): amplitude i times d[bits of i at qubits]"},
    {"probabilities", py_probabilities, METH_VARARGS, "probabilities(state, out): |psi|^2"},
    {"qubit_one_probability", py_qubit_one_probability, METH_VARARGS,
     "qubit_one_probability(state, q): P(qubit q reads 1)"},
    {"collapse", py_collapse, METH_VARARGS,
     "collapse(state, q, outcome, scale): project qubit q on outcome and scale, in place"},
    {"pauli_expectation", py_pauli_expectation, METH_VARARGS,
     "pauli_expectation(state, x_mask, z_mask): sum_j conj(psi_j) (-1)^|j&z| psi_(j^x)"},
    {"marginal", py_marginal, METH_VARARGS,
     "marginal(state, qubits, out): probabilities of the outcomes of qubits"},
    {"sample_sorted", py_sample_sorted, METH_VARARGS,
     "sample_sorted(state, draws, out): basis indices for sorted uniform draws"},
    {"insert_qubit", py_insert_qubit, METH_VARARGS,
     "insert_qubit(state, out, slot, value): out (zeroed, twice as long) = state with a qubit in "
     "basis state value at bit slot"},
    {"extract_qubit", py_extract_qubit, METH_VARARGS,
     "extract_qubit(state, out, slot, value): out (half as long) = the amplitudes whose bit slot "
     "reads value"},
    {"reduced_density_matrix", py_reduced_density_matrix, METH_VARARGS,
     "reduced_density_matrix(state, sorted_qubits, offsets, out): the 2^k x 2^k matrix, complex128"},
    {"apply_controlled", py_apply_controlled, METH_VARARGS,
     "apply_controlled(state, m_re, m_im, target, controls): 2 x 2 matrix on qubit target of the "
     "amplitudes whose controls (int64) all read 1, in place"},
    {"overlap", py_overlap, METH_VARARGS,
     "overlap(bra, ket, qubits, controls, out): X (complex128, 2^k x 2^k) with <bra|M|ket> = "
     "sum(M * X) for M on sorted qubits of the amplitudes whose controls all read 1"},
    {"overlap_diagonal", py_overlap_diagonal, METH_VARARGS,
     "overlap_diagonal(bra, ket, qubits, out): x (complex128, 2^k) with <bra|diag(d)|ket> = "
     "sum(d * x) for a table d on sorted qubits"},
    {"add_pauli_terms", py_add_pauli_terms, METH_VARARGS,
     "add_pauli_terms(out, state, x_mask, z_masks, c_re, c_im): out[j] += sum_t c_t "
     "(-1)^|j & z_t| state[j ^ x_mask]"},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "set_num_threads(n): OpenMP threads"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "get_num_threads(): OpenMP threads"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu",
                                    "The CPU state kernels (see kernels/cpu.py).", -1, methods};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&module); }
