/* The CPU kernels for one real type, included twice by _cpu.c: R is float or double and FN(x)
 * names x for it. A state is 2^n complex amplitudes stored as 2 * 2^n R (real, imaginary).
 * Qubit lists are sorted ascending; bit j of a matrix or table index is qubit q[j]. */

/* The tile kernel behind apply_dense for k <= 4: TILE groups are gathered into separate real and
 * imaginary rows (structure of arrays), so the multiply is plain loops of constant length over the
 * tile that the compiler vectorises whatever the qubits. Output rows are made four at a time,
 * reading each input row once per four rows: about one multiply-add per load. */
CLONES static void FN(dense_tiles)(R *restrict s, const R *m_re, const R *m_im, const int64_t *q,
                                   int k, const int64_t *offs, const int64_t *lanes, int64_t tile,
                                   int64_t t_lo, int64_t t_hi)
{
    const int dim = 1 << k;
    const int contiguous = ((int64_t)1 << q[0]) >= tile;
    R x[DMAX][2][TILE] __attribute__((aligned(64)));
    R y[DMAX][2][TILE] __attribute__((aligned(64)));
    R mr[DMAX][DMAX], mi[DMAX][DMAX];  /* rows past dim stay 0 */
    memset(mr, 0, sizeof mr);
    memset(mi, 0, sizeof mi);
    memset(x, 0, sizeof x);  /* lanes past a short tile (tiny states) stay 0 and are dropped */
    for (int r = 0; r < dim; r++)
        for (int c = 0; c < dim; c++) {
            mr[r][c] = m_re[r * dim + c];
            mi[r][c] = m_im[r * dim + c];
        }
    const int64_t span = lanes[tile - 1] + 2;  /* R from a tile's first amplitude to its last */
    for (int64_t t = t_lo; t < t_hi; t++) {
        const int64_t t0 = 2 * insert_zero_bits(t * tile, q, k);
        if (t + 1 < t_hi) {  /* memory fetches the next tile while this one computes */
            const int64_t t1 = 2 * insert_zero_bits((t + 1) * tile, q, k);
            for (int c = 0; c < dim; c++)
                for (int64_t j = 0; j < span; j += 64 / (int64_t)sizeof(R))
                    __builtin_prefetch(s + t1 + offs[c] + j, 1, 3);
        }
        for (int c = 0; c < dim; c++) {
            const R *src = s + t0 + offs[c];
            if (contiguous) {
                for (int64_t l = 0; l < tile; l++) {
                    x[c][0][l] = src[2 * l];
                    x[c][1][l] = src[2 * l + 1];
                }
            } else {
                for (int64_t l = 0; l < tile; l++) {
                    x[c][0][l] = src[lanes[l]];
                    x[c][1][l] = src[lanes[l] + 1];
                }
            }
        }
        for (int r = 0; r < dim; r += 4) {
            for (int l = 0; l < TILE; l++)
                for (int u = 0; u < 4; u++) y[r + u][0][l] = y[r + u][1][l] = 0;
            for (int c = 0; c < dim; c++) {
                const R p0 = mr[r][c], q0 = mi[r][c], p1 = mr[r + 1][c], q1 = mi[r + 1][c];
                const R p2 = mr[r + 2][c], q2 = mi[r + 2][c], p3 = mr[r + 3][c], q3 = mi[r + 3][c];
                for (int l = 0; l < TILE; l++) {
                    const R xr = x[c][0][l], xi = x[c][1][l];
                    y[r][0][l] += p0 * xr - q0 * xi;
                    y[r][1][l] += p0 * xi + q0 * xr;
                    y[r + 1][0][l] += p1 * xr - q1 * xi;
                    y[r + 1][1][l] += p1 * xi + q1 * xr;
                    y[r + 2][0][l] += p2 * xr - q2 * xi;
                    y[r + 2][1][l] += p2 * xi + q2 * xr;
                    y[r + 3][0][l] += p3 * xr - q3 * xi;
                    y[r + 3][1][l] += p3 * xi + q3 * xr;
                }
            }
        }
        for (int r = 0; r < dim; r++) {
            R *dst = s + t0 + offs[r];
            if (contiguous) {
                for (int64_t l = 0; l < tile; l++) {
                    dst[2 * l] = y[r][0][l];
                    dst[2 * l + 1] = y[r][1][l];
                }
            } else {
                for (int64_t l = 0; l < tile; l++) {
                    dst[lanes[l]] = y[r][0][l];
                    dst[lanes[l] + 1] = y[r][1][l];
                }
            }
        }
    }
}

/* Blocks of more than 4 qubits: the same tiles with buffers sized at run time (rare: only when a
 * caller asks for wider fusion than max_dense). */
static void FN(wide_tiles)(R *restrict s, const R *m_re, const R *m_im, const int64_t *q, int k,
                           const int64_t *offs, const int64_t *lanes, int64_t tile,
                           int64_t t_lo, int64_t t_hi, R *x, R *a)
{
    const int64_t dim = (int64_t)1 << k;
    const int contiguous = ((int64_t)1 << q[0]) >= tile;
    for (int64_t t = t_lo; t < t_hi; t++) {
        const int64_t t0 = 2 * insert_zero_bits(t * tile, q, k);
        for (int64_t c = 0; c < dim; c++) {
            const R *src = s + t0 + offs[c];
            for (int64_t l = 0; l < tile; l++) {
                const int64_t o = contiguous ? 2 * l : lanes[l];
                x[(2 * c) * tile + l] = src[o];
                x[(2 * c + 1) * tile + l] = src[o + 1];
            }
        }
        for (int64_t r = 0; r < dim; r++) {
            R *ar = a, *ai = a + tile;
            for (int64_t l = 0; l < tile; l++) ar[l] = ai[l] = 0;
            for (int64_t c = 0; c < dim; c++) {
                const R p = m_re[r * dim + c], w = m_im[r * dim + c];
                if (p == 0 && w == 0) continue;  /* permutation and controlled blocks are sparse */
                const R *xr = x + (2 * c) * tile, *xi = x + (2 * c + 1) * tile;
                for (int64_t l = 0; l < tile; l++) {
                    ar[l] += p * xr[l] - w * xi[l];
                    ai[l] += p * xi[l] + w * xr[l];
                }
            }
            /* row r is written after every column is read: rows of one tile never overlap */
            R *dst = s + t0 + offs[r];
            for (int64_t l = 0; l < tile; l++) {
                const int64_t o = contiguous ? 2 * l : lanes[l];
                dst[o] = ar[l];
                dst[o + 1] = ai[l];
            }
        }
    }
}

static int FN(apply_dense)(R *s, int64_t n_amp, const R *m_re, const R *m_im, const int64_t *q,
                           int k)
{
    const int64_t dim = (int64_t)1 << k;
    const int64_t groups = n_amp >> k;
    const int64_t tile = lowest_bit(groups) < TILE ? lowest_bit(groups) : TILE;
    const int64_t tiles = groups / tile;
    const int64_t chunks = tiles < 256 ? tiles : 256;
    int64_t *offs = malloc(sizeof(int64_t) * (size_t)(dim + tile));
    if (!offs) return -1;
    int64_t *lanes = offs + dim;
    for (int64_t j = 0; j < dim; j++) {
        int64_t o = 0;
        for (int b = 0; b < k; b++)
            if ((j >> b) & 1) o |= (int64_t)1 << q[b];
        offs[j] = 2 * o;
    }
    for (int64_t l = 0; l < tile; l++) lanes[l] = 2 * insert_zero_bits(l, q, k);
    int failed = 0;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t ch = 0; ch < chunks; ch++) {
        const int64_t lo = tiles * ch / chunks, hi = tiles * (ch + 1) / chunks;
        if (k <= 4) {
            FN(dense_tiles)(s, m_re, m_im, q, k, offs, lanes, tile, lo, hi);
        } else {
            R *buf = malloc(sizeof(R) * (size_t)(2 * tile * (dim + 1)));
            if (!buf) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            FN(wide_tiles)(s, m_re, m_im, q, k, offs, lanes, tile, lo, hi, buf,
                           buf + 2 * tile * dim);
            free(buf);
        }
    }
    free(offs);
    return failed ? -1 : 0;
}

/* One run of contiguous amplitude pairs (a, b) of a one-qubit gate: plain complex loops that the
 * compiler vectorises (twice as fast as the tiles for the cheapest, most common block). */
CLONES static void FN(pair_run)(R *restrict a, R *restrict b, int64_t run, const R *m)
{
    const R m00r = m[0], m00i = m[1], m01r = m[2], m01i = m[3];
    const R m10r = m[4], m10i = m[5], m11r = m[6], m11i = m[7];
    for (int64_t j = 0; j < run; j++) {
        const R ar = a[2 * j], ai = a[2 * j + 1], br = b[2 * j], bi = b[2 * j + 1];
        a[2 * j] = m00r * ar - m00i * ai + m01r * br - m01i * bi;
        a[2 * j + 1] = m00r * ai + m00i * ar + m01r * bi + m01i * br;
        b[2 * j] = m10r * ar - m10i * ai + m11r * br - m11i * bi;
        b[2 * j + 1] = m10r * ai + m10i * ar + m11r * bi + m11i * br;
    }
}

/* Pairs of a qubit below 3: stride a constant 1, 2 or 4 in each case of the switch, so every
 * case is a loop the compiler vectorises (a run of one pair per call would not be). */
static inline __attribute__((always_inline)) void FN(pairs_strided)(R *restrict s, int64_t pairs,
                                                                     const R *m, const int stride)
{
    const R m00r = m[0], m00i = m[1], m01r = m[2], m01i = m[3];
    const R m10r = m[4], m10i = m[5], m11r = m[6], m11i = m[7];
    for (int64_t blk = 0; blk < pairs / stride; blk++) {  /* blocks of 2 * stride amplitudes */
        R *a = s + 4 * stride * blk, *b = a + 2 * stride;
        for (int j = 0; j < 2 * stride; j += 2) {
            const R ar = a[j], ai = a[j + 1], br = b[j], bi = b[j + 1];
            a[j] = m00r * ar - m00i * ai + m01r * br - m01i * bi;
            a[j + 1] = m00r * ai + m00i * ar + m01r * bi + m01i * br;
            b[j] = m10r * ar - m10i * ai + m11r * br - m11i * bi;
            b[j + 1] = m10r * ai + m10i * ar + m11r * bi + m11i * br;
        }
    }
}

CLONES static void FN(pairs_low)(R *restrict s, int64_t pairs, const R *m, int q)
{
    switch (q) {
    case 0: FN(pairs_strided)(s, pairs, m, 1); break;
    case 1: FN(pairs_strided)(s, pairs, m, 2); break;
    default: FN(pairs_strided)(s, pairs, m, 4); break;
    }
}

/* m: the 2x2 matrix as 8 R, row-major, real and imaginary parts interleaved */
static void FN(apply_1q)(R *s, int64_t n_amp, const R *m, int q)
{
    const int64_t stride = (int64_t)1 << q;
    const int64_t half = n_amp >> 1;
    int64_t run = q < 3 ? RUN : (stride < RUN ? stride : RUN);
    if (run > lowest_bit(half)) run = lowest_bit(half);  /* whole runs: half may be rows x 2^k */
    const int64_t items = half / run;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t it = 0; it < items; it++) {
        const int64_t g = it * run;
        const int64_t i0 = ((g >> q) << (q + 1)) | (g & (stride - 1));
        if (q < 3)  /* run is then RUN pairs in whole blocks of 2 * stride amplitudes */
            FN(pairs_low)(s + 2 * i0, run, m, q);
        else
            FN(pair_run)(s + 2 * i0, s + 2 * (i0 + stride), run, m);
    }
}

/* Multiply amplitude i by d[bits of i at q]. Runs of TILE consecutive amplitudes share the table
 * bits above the run; the bits inside it come from a small precomputed table. */
static void FN(apply_diagonal)(R *s, int64_t n_amp, const R *d_re, const R *d_im,
                               const int64_t *q, int k)
{
    const int64_t tile = lowest_bit(n_amp) < TILE ? lowest_bit(n_amp) : TILE;
    int64_t low[TILE];
    for (int64_t l = 0; l < tile; l++) {
        low[l] = 0;
        for (int b = 0; b < k; b++) low[l] |= ((l >> q[b]) & 1) << b;
    }
    const int uniform = k == 0 || ((int64_t)1 << q[0]) >= tile;
    const int64_t runs = n_amp / tile;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t r = 0; r < runs; r++) {
        const int64_t i = r * tile;
        int64_t high = 0;
        for (int b = 0; b < k; b++) high |= ((i >> q[b]) & 1) << b;
        R *v = s + 2 * i;
        if (uniform) {  /* no table bit inside the run: one phase for all of it */
            const R dr = d_re[high], di = d_im[high];
            for (int64_t l = 0; l < tile; l++) {
                const R x = v[2 * l], y = v[2 * l + 1];
                v[2 * l] = dr * x - di * y;
                v[2 * l + 1] = dr * y + di * x;
            }
        } else {
            for (int64_t l = 0; l < tile; l++) {
                const int64_t j = high | low[l];
                const R dr = d_re[j], di = d_im[j], x = v[2 * l], y = v[2 * l + 1];
                v[2 * l] = dr * x - di * y;
                v[2 * l + 1] = dr * y + di * x;
            }
        }
    }
}

static void FN(probabilities)(const R *s, int64_t n_amp, double *out)
{
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t i = 0; i < n_amp; i++)
        out[i] = (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
}

static double FN(qubit_one_probability)(const R *s, int64_t n_amp, int q)
{
    const int64_t stride = (int64_t)1 << q, half = n_amp >> 1;
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (n_amp >= SERIAL_BELOW)
    for (int64_t g = 0; g < half; g++) {
        const int64_t i = (((g >> q) << (q + 1)) | (g & (stride - 1))) | stride;
        total += (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
    }
    return total;
}

/* Zero the amplitudes where qubit q differs from outcome; scale the others. */
static void FN(collapse)(R *s, int64_t n_amp, int q, int outcome, R scale)
{
    const int64_t stride = (int64_t)1 << q, half = n_amp >> 1;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t g = 0; g < half; g++) {
        const int64_t i0 = ((g >> q) << (q + 1)) | (g & (stride - 1));
        R *keep = s + 2 * (outcome ? i0 | stride : i0), *drop = s + 2 * (outcome ? i0 : i0 | stride);
        keep[0] *= scale;
        keep[1] *= scale;
        drop[0] = drop[1] = 0;
    }
}

/* sum_j conj(psi[j]) (-1)^popcount(j & z) psi[j ^ x] (the phase (-i)^#Y is the caller's) */
static void FN(pauli_expectation)(const R *s, int64_t n_amp, int64_t x_mask, int64_t z_mask,
                                  double *re_out, double *im_out)
{
    double re = 0, im = 0;
    if (x_mask == 0) {   /* diagonal: signed probabilities */
#pragma omp parallel for schedule(static) reduction(+ : re) if (n_amp >= SERIAL_BELOW)
        for (int64_t j = 0; j < n_amp; j++) {
            const double p = (double)s[2 * j] * s[2 * j] + (double)s[2 * j + 1] * s[2 * j + 1];
            re += __builtin_parityll((unsigned long long)(j & z_mask)) ? -p : p;
        }
        *re_out = re;
        *im_out = 0;
        return;
    }
    /* Each pair (j, p = j ^ x_mask) once, j the one whose highest bit of x_mask is 0, so every
       amplitude is read once. sign(p) = sign(j) * (-1)^|x & z|: with c that constant, the pair
       adds sign(j) * (conj(a) b + c conj(b) a) = 2 sign(j) Re(conj(a) b) when c = 1, and
       2i sign(j) Im(conj(a) b) when c = -1. */
    const int top = 63 - __builtin_clzll((unsigned long long)x_mask);
    const int64_t low = ((int64_t)1 << top) - 1;
    const int same = !__builtin_parityll((unsigned long long)(x_mask & z_mask));
    const int64_t pairs = n_amp >> 1;
#pragma omp parallel for schedule(static) reduction(+ : re, im) if (n_amp >= SERIAL_BELOW)
    for (int64_t k = 0; k < pairs; k++) {
        const int64_t j = ((k & ~low) << 1) | (k & low);   /* a 0 inserted at bit top */
        const int64_t p = j ^ x_mask;
        const double ar = s[2 * j], ai = s[2 * j + 1], br = s[2 * p], bi = s[2 * p + 1];
        const double sign = __builtin_parityll((unsigned long long)(j & z_mask)) ? -2.0 : 2.0;
        if (same)
            re += sign * (ar * br + ai * bi);
        else
            im += sign * (ar * bi - ai * br);
    }
    *re_out = re;
    *im_out = im;
}

/* Probabilities of the 2^k outcomes of qubits q, into out (zeroed here). */
static int FN(marginal)(const R *s, int64_t n_amp, const int64_t *q, int k, double *out)
{
    const int64_t outcomes = (int64_t)1 << k;
    int64_t chunks = n_amp < 64 ? n_amp : 64;
    while (chunks > 1 && chunks * outcomes > n_amp) chunks >>= 1;  /* histograms <= the state */
    double *hist = calloc((size_t)(chunks * outcomes), sizeof(double));
    if (!hist) return -1;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t c = 0; c < chunks; c++) {
        double *h = hist + c * outcomes;
        for (int64_t i = n_amp * c / chunks; i < n_amp * (c + 1) / chunks; i++) {
            int64_t idx = 0;
            for (int b = 0; b < k; b++) idx |= ((i >> q[b]) & 1) << b;
            h[idx] += (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
        }
    }
    for (int64_t o = 0; o < outcomes; o++) {
        double acc = 0;
        for (int64_t c = 0; c < chunks; c++) acc += hist[c * outcomes + o];
        out[o] = acc;
    }
    free(hist);
    return 0;
}

/* Basis indices for sorted uniform draws in [0, 1), by inverse transform over |psi|^2, in one
 * parallel pass over the state and without an N-sized cumulative array: the state is cut into
 * chunks, their norms summed, and each chunk then walks the draws that fall into it. */
static int FN(sample_sorted)(const R *s, int64_t n_amp, const double *draws, int64_t n_draws,
                             int64_t *out)
{
    const int64_t chunks = n_amp < 256 ? n_amp : 256;
    double *norms = malloc(sizeof(double) * (size_t)(2 * chunks));
    int64_t *last = malloc(sizeof(int64_t) * (size_t)chunks);  /* last index with p > 0 */
    if (!norms || !last) {
        free(norms);
        free(last);
        return -1;
    }
    double *ends = norms + chunks;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t c = 0; c < chunks; c++) {
        double acc = 0;
        int64_t nz = n_amp * (c + 1) / chunks - 1;  /* an all-zero chunk: its last index */
        for (int64_t i = n_amp * c / chunks; i < n_amp * (c + 1) / chunks; i++) {
            const double p = (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
            acc += p;
            if (p > 0) nz = i;
        }
        norms[c] = acc;
        last[c] = nz;
    }
    double total = 0;
    for (int64_t c = 0; c < chunks; c++) ends[c] = (total += norms[c]);
    int64_t top = chunks - 1;  /* the last chunk holding probability takes the draws past it */
    while (top > 0 && norms[top] == 0) top--;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t c = 0; c <= top; c++) {
        /* chunk c holds the draws in [ends[c - 1], ends[c]): the same bounds on both sides */
        const double start = c ? ends[c - 1] : 0.0;
        const int64_t lo = c ? first_at_least(draws, n_draws, total, start) : 0;
        const int64_t hi = c < top ? first_at_least(draws, n_draws, total, ends[c]) : n_draws;
        int64_t i = n_amp * c / chunks;
        const int64_t stop = last[c];  /* rounding never walks onto a zero past the last p > 0 */
        double acc = start;
        for (int64_t d = lo; d < hi; d++) {
            const double target = draws[d] * total;
            while (i < stop) {
                const double p = (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
                if (acc + p > target) break;
                acc += p;
                i++;
            }
            out[d] = i;
        }
    }
    free(last);
    free(norms);
    return 0;
}

/* ---- live-qubit compaction: a qubit in a known basis state enters or leaves the state ------- */

/* Amplitude i of the small state (2^n) is amplitude j of the big one (2^(n+1)), j being i with a
 * bit ``value`` inserted at ``slot``. insert: big (zeroed) <- small; extract: small <- big, the
 * big state's amplitudes whose bit ``slot`` reads ``value``. */
static void FN(move_qubit)(R *small, R *big, int64_t n_small, int slot, int value, int insert)
{
    const int64_t low = ((int64_t)1 << slot) - 1, high = (int64_t)value << slot;
#pragma omp parallel for schedule(static) if (n_small >= SERIAL_BELOW)
    for (int64_t i = 0; i < n_small; i++) {
        const int64_t j = ((i >> slot) << (slot + 1)) | high | (i & low);
        R *to = insert ? big + 2 * j : small + 2 * i;
        const R *from = insert ? small + 2 * i : big + 2 * j;
        to[0] = from[0];
        to[1] = from[1];
    }
}

/* The 2^k x 2^k reduced density matrix of k qubits, in complex128 (``out``: 2 * 4^k doubles).
 * ``q``: the qubits sorted (to enumerate groups); ``offsets[r]``: the amplitude offset of matrix
 * index r within a group (bit j of r is the caller's j-th qubit, in any order). One read-only pass;
 * partial sums per chunk of groups, added at the end. */
static int FN(reduced_density_matrix)(const R *s, int64_t n_amp, const int64_t *q, int k,
                                      const int64_t *offsets, double *out)
{
    const int64_t dim = (int64_t)1 << k, groups = n_amp >> k;
    const int64_t chunks = groups < 64 ? groups : 64;
    double *acc = calloc((size_t)(chunks * dim * dim * 2 + chunks * dim * 2), sizeof(double));
    if (!acc) return -1;
    double *vectors = acc + chunks * dim * dim * 2;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t ch = 0; ch < chunks; ch++) {
        double *a = acc + ch * dim * dim * 2, *vr = vectors + ch * dim * 2, *vi = vr + dim;
        for (int64_t g = groups * ch / chunks; g < groups * (ch + 1) / chunks; g++) {
            const int64_t base = insert_zero_bits(g, q, k);
            for (int64_t r = 0; r < dim; r++) {
                vr[r] = s[2 * (base + offsets[r])];
                vi[r] = s[2 * (base + offsets[r]) + 1];
            }
            for (int64_t r = 0; r < dim; r++)
                for (int64_t c = 0; c < dim; c++) {  /* v[r] conj(v[c]) */
                    a[2 * (r * dim + c)] += vr[r] * vr[c] + vi[r] * vi[c];
                    a[2 * (r * dim + c) + 1] += vi[r] * vr[c] - vr[r] * vi[c];
                }
        }
    }
    for (int64_t e = 0; e < dim * dim * 2; e++) {
        double total = 0;
        for (int64_t ch = 0; ch < chunks; ch++) total += acc[ch * dim * dim * 2 + e];
        out[e] = total;
    }
    free(acc);
    return 0;
}

/* ---- the adjoint method: controlled one-qubit gates, overlaps of two states, Pauli sums ------ */

/* The pairs (i0, i0 + 2^t) of a controlled one-qubit gate, in runs of contiguous pairs: q holds
 * the target t and the controls, sorted (k of them); every pair has the bits of ``set`` set. */
static inline int64_t FN(controlled_run)(int64_t n_amp, const int64_t *q, int k, int64_t *items)
{
    const int64_t pairs = n_amp >> k;
    int64_t run = (int64_t)1 << q[0];  /* indices below the lowest qubit are contiguous */
    if (run > RUN) run = RUN;
    if (run > lowest_bit(pairs)) run = lowest_bit(pairs);
    *items = pairs / run;
    return run;
}

/* m (8 R, as apply_1q) on qubit t of the amplitudes whose bits ``set`` all read 1. */
static void FN(apply_controlled)(R *s, int64_t n_amp, const R *m, int t, const int64_t *q, int k,
                                 int64_t set)
{
    int64_t items;
    const int64_t run = FN(controlled_run)(n_amp, q, k, &items), stride = (int64_t)1 << t;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t it = 0; it < items; it++) {
        const int64_t i0 = insert_zero_bits(it * run, q, k) | set;
        FN(pair_run)(s + 2 * i0, s + 2 * (i0 + stride), run, m);
    }
}

/* X[a][c] = sum of conj(bra[i0 + a 2^t]) ket[i0 + c 2^t] over the pairs of apply_controlled
 * (out: 8 doubles, X00 X01 X10 X11, real and imaginary parts): <bra|M|ket> = sum M[a][c] X[a][c]
 * for M on qubit t of those amplitudes. Partial sums per chunk, added in order at the end. */
CLONES static void FN(overlap_1q)(const R *bra, const R *ket, int64_t n_amp, int t,
                                  const int64_t *q, int k, int64_t set, double *out)
{
    int64_t items;
    const int64_t run = FN(controlled_run)(n_amp, q, k, &items), stride = (int64_t)1 << t;
    const int64_t chunks = items < 64 ? items : 64;
    double acc[64][8];
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t ch = 0; ch < chunks; ch++) {
        double x[8][4];  /* four partial sums of each entry: lanes the compiler vectorises */
        memset(x, 0, sizeof x);
        if (k == 1 && t < 2) {  /* runs of one or two pairs: four pairs at a time instead */
            const int64_t g0 = items * ch / chunks * run, g1 = items * (ch + 1) / chunks * run;
            for (int64_t g = g0; g < g1; g += 4)
                for (int l = 0; l < 4 && g + l < g1; l++) {
                    const int64_t i0 = (((g + l) >> t) << (t + 1)) | ((g + l) & (stride - 1));
                    const int64_t o = 2 * i0, p = 2 * (i0 + stride);
                    const double ar = bra[o], ai = -(double)bra[o + 1];
                    const double cr = bra[p], ci = -(double)bra[p + 1];
                    const double pr = ket[o], pi = ket[o + 1], rr = ket[p], ri = ket[p + 1];
                    x[0][l] += ar * pr - ai * pi;
                    x[1][l] += ar * pi + ai * pr;
                    x[2][l] += ar * rr - ai * ri;
                    x[3][l] += ar * ri + ai * rr;
                    x[4][l] += cr * pr - ci * pi;
                    x[5][l] += cr * pi + ci * pr;
                    x[6][l] += cr * rr - ci * ri;
                    x[7][l] += cr * ri + ci * rr;
                }
        } else
        for (int64_t it = items * ch / chunks; it < items * (ch + 1) / chunks; it++) {
            const int64_t i0 = insert_zero_bits(it * run, q, k) | set;
            const R *b0 = bra + 2 * i0, *b1 = bra + 2 * (i0 + stride);
            const R *k0 = ket + 2 * i0, *k1 = ket + 2 * (i0 + stride);
            for (int64_t j = 0; j < run; j += 4) {
                const int lanes = run - j < 4 ? (int)(run - j) : 4;
                for (int l = 0; l < lanes; l++) {
                    const int64_t o = 2 * (j + l);
                    const double ar = b0[o], ai = -(double)b0[o + 1];
                    const double cr = b1[o], ci = -(double)b1[o + 1];
                    const double pr = k0[o], pi = k0[o + 1], rr = k1[o], ri = k1[o + 1];
                    x[0][l] += ar * pr - ai * pi;
                    x[1][l] += ar * pi + ai * pr;
                    x[2][l] += ar * rr - ai * ri;
                    x[3][l] += ar * ri + ai * rr;
                    x[4][l] += cr * pr - ci * pi;
                    x[5][l] += cr * pi + ci * pr;
                    x[6][l] += cr * rr - ci * ri;
                    x[7][l] += cr * ri + ci * rr;
                }
            }
        }
        for (int e = 0; e < 8; e++) acc[ch][e] = (x[e][0] + x[e][1]) + (x[e][2] + x[e][3]);
    }
    for (int e = 0; e < 8; e++) {
        double total = 0;
        for (int64_t ch = 0; ch < chunks; ch++) total += acc[ch][e];
        out[e] = total;
    }
}

/* X[r][c] = sum over groups of conj(bra[base + offsets[r]]) ket[base + offsets[c]] (out: 2 * 4^m
 * doubles): <bra|M|ket> = sum M[r][c] X[r][c] for M on the m qubits of the offsets, in the
 * amplitudes whose bits ``set`` read 1. q: those qubits and the controls, sorted (k of them). */
CLONES static int FN(overlap_dense)(const R *bra, const R *ket, int64_t n_amp, const int64_t *q,
                                    int k, int64_t set, const int64_t *offsets, int64_t dim,
                                    double *out)
{
    const int64_t groups = n_amp >> k;
    const int64_t chunks = groups < 64 ? groups : 64;
    double *acc = calloc((size_t)(chunks * dim * dim * 2 + chunks * dim * 4), sizeof(double));
    if (!acc) return -1;
    double *vectors = acc + chunks * dim * dim * 2;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t ch = 0; ch < chunks; ch++) {
        double *a = acc + ch * dim * dim * 2, *br = vectors + ch * dim * 4, *bi = br + dim;
        double *kr = bi + dim, *ki = kr + dim;
        for (int64_t g = groups * ch / chunks; g < groups * (ch + 1) / chunks; g++) {
            const int64_t base = insert_zero_bits(g, q, k) | set;
            for (int64_t r = 0; r < dim; r++) {
                br[r] = bra[2 * (base + offsets[r])];
                bi[r] = -(double)bra[2 * (base + offsets[r]) + 1];
                kr[r] = ket[2 * (base + offsets[r])];
                ki[r] = ket[2 * (base + offsets[r]) + 1];
            }
            for (int64_t r = 0; r < dim; r++)
                for (int64_t c = 0; c < dim; c++) {  /* conj(bra[r]) ket[c] */
                    a[2 * (r * dim + c)] += br[r] * kr[c] - bi[r] * ki[c];
                    a[2 * (r * dim + c) + 1] += br[r] * ki[c] + bi[r] * kr[c];
                }
        }
    }
    for (int64_t e = 0; e < dim * dim * 2; e++) {
        double total = 0;
        for (int64_t ch = 0; ch < chunks; ch++) total += acc[ch * dim * dim * 2 + e];
        out[e] = total;
    }
    free(acc);
    return 0;
}

/* x[r] = sum of conj(bra[i]) ket[i] over the amplitudes i whose bits at q read r (out: 2 * 2^k
 * doubles): <bra|diag(d)|ket> = sum d[r] x[r]. Histograms per chunk, as marginal. */
CLONES static int FN(overlap_diagonal)(const R *bra, const R *ket, int64_t n_amp,
                                       const int64_t *q, int k, double *out)
{
    const int64_t outcomes = (int64_t)1 << k;
    int64_t chunks = n_amp < 64 ? n_amp : 64;
    while (chunks > 1 && chunks * outcomes > n_amp) chunks >>= 1;
    double *hist = calloc((size_t)(chunks * outcomes * 2), sizeof(double));
    if (!hist) return -1;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t c = 0; c < chunks; c++) {
        double *h = hist + c * outcomes * 2;
        for (int64_t i = n_amp * c / chunks; i < n_amp * (c + 1) / chunks; i++) {
            int64_t idx = 0;
            for (int b = 0; b < k; b++) idx |= ((i >> q[b]) & 1) << b;
            const double ar = bra[2 * i], ai = -(double)bra[2 * i + 1];
            const double pr = ket[2 * i], pi = ket[2 * i + 1];
            h[2 * idx] += ar * pr - ai * pi;
            h[2 * idx + 1] += ar * pi + ai * pr;
        }
    }
    for (int64_t o = 0; o < 2 * outcomes; o++) {
        double acc = 0;
        for (int64_t c = 0; c < chunks; c++) acc += hist[c * outcomes * 2 + o];
        out[o] = acc;
    }
    free(hist);
    return 0;
}

/* out[j] += (sum_t c[t] (-1)^popcount(j & z[t])) s[j ^ x]: Pauli strings sharing one X part x
 * (coefficients with the phase (-i)^#Y taken in), added to out in one pass. Runs of TILE
 * amplitudes: each term's sign is one parity for the bits above the run times a table for the
 * bits inside it, so the factor of a run is a loop over the terms that the compiler vectorises,
 * and the partners s[j ^ x] lie in one run too. cl: 2 * terms * TILE scratch R's. */
CLONES static void FN(add_pauli_terms)(R *restrict out, const R *restrict s, int64_t n_amp,
                                       int64_t x, const int64_t *z, const double *c_re,
                                       const double *c_im, int terms, double *cl)
{
    const int64_t tile = lowest_bit(n_amp) < TILE ? lowest_bit(n_amp) : TILE;
    const int64_t inside = tile - 1, x_low = x & inside, x_high = x & ~inside;
    for (int t = 0; t < terms; t++)  /* c[t] times the sign from the bits inside a run */
        for (int64_t l = 0; l < tile; l++) {
            const double sign = __builtin_parityll((unsigned long long)(l & z[t])) ? -1.0 : 1.0;
            cl[(2 * t) * TILE + l] = sign * c_re[t];
            cl[(2 * t + 1) * TILE + l] = sign * c_im[t];
        }
    const int64_t runs = n_amp / tile;
#pragma omp parallel for schedule(static) if (n_amp >= SERIAL_BELOW)
    for (int64_t r = 0; r < runs; r++) {
        const int64_t j0 = r * tile, p0 = j0 ^ x_high;
        double fr[TILE], fi[TILE];
        for (int64_t l = 0; l < tile; l++) fr[l] = fi[l] = 0;
        for (int t = 0; t < terms; t++) {
            const double h = __builtin_parityll((unsigned long long)(j0 & z[t])) ? -1.0 : 1.0;
            const double *a = cl + (2 * t) * TILE, *b = a + TILE;
            for (int64_t l = 0; l < tile; l++) {
                fr[l] += h * a[l];
                fi[l] += h * b[l];
            }
        }
        R *o = out + 2 * j0;
        for (int64_t l = 0; l < tile; l++) {
            const R *v = s + 2 * (p0 | (l ^ x_low));
            const double br = v[0], bi = v[1];
            o[2 * l] += (R)(fr[l] * br - fi[l] * bi);
            o[2 * l + 1] += (R)(fr[l] * bi + fi[l] * br);
        }
    }
}
