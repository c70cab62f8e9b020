/* Direct stride-1 convolution loops, one instantiation per (element type, instruction set).
 *
 * Included by _conv_direct.h only, with CG_T (float or double), CG_VBYTES (the vector size in
 * bytes), CG_NL (its lanes), CG_FN(name) (the instantiation's function names) and CG_ATTR (the
 * target attribute, or nothing) defined.  See _conv_direct.h for the layouts and the method.
 */

typedef CG_T CG_FN(vec) __attribute__((vector_size(CG_VBYTES)));

/* A correlation over "slots" (vectors of CG_NL positions): slot s is row r = s / nv, vector
 * j = s % nv of that row; it reads the input at position r*prs + j*CG_NL and writes
 * out[co*ostride + r*ors + j*CG_NL] = sum over t < k of w[co*k + t] * in[offs[t] + position]
 * (+ bias[co]), t running over input channels and taps at once (offs holds both).  Flat mode is
 * one row (prs = ors = 0); row mode has the output's rows (no position computed twice).
 * Four output channels at a time share each input load (two slots, eight accumulators); a channel
 * left over runs alone, its taps dealt out to four pairs of accumulators.  An odd last slot is
 * computed twice. */
static CG_ATTR void CG_FN(corr)(const CG_T* in, const CG_T* w, const ptrdiff_t* offs, ptrdiff_t k,
                                ptrdiff_t cout, CG_T* out, ptrdiff_t ostride, ptrdiff_t nslots,
                                ptrdiff_t nv, ptrdiff_t prs, ptrdiff_t ors, const CG_T* bias)
{
    typedef CG_FN(vec) V;
    ptrdiff_t co = 0, sl, t;
    ptrdiff_t r0 = 0, v0 = 0, r1, v1;   /* slot sl is row r0, vector v0 */
    for (sl = 0; sl < nslots; sl += 2) {
        const CG_T* i0;
        const CG_T* i1;
        CG_T* o0;
        CG_T* o1;
        r1 = r0; v1 = v0;
        if (sl + 1 < nslots && ++v1 == nv) { v1 = 0; r1++; }
        i0 = in + r0 * prs + v0 * CG_NL;
        i1 = in + r1 * prs + v1 * CG_NL;
        o0 = out + r0 * ors + v0 * CG_NL;
        o1 = out + r1 * ors + v1 * CG_NL;
        r0 = r1; v0 = v1;
        if (++v0 == nv) { v0 = 0; r0++; }
        for (co = 0; co + 4 <= cout; co += 4) {
            const CG_T* wc = w + co * k;
            V a00, a01, a10, a11, a20, a21, a30, a31;
            CG_SPLAT(a00, bias ? bias[co] : 0);
            CG_SPLAT(a10, bias ? bias[co + 1] : 0);
            CG_SPLAT(a20, bias ? bias[co + 2] : 0);
            CG_SPLAT(a30, bias ? bias[co + 3] : 0);
            a01 = a00; a11 = a10; a21 = a20; a31 = a30;
            for (t = 0; t < k; t++) {
                V x0, x1;
                CG_T v = wc[t];             /* a scalar operand is broadcast */
                CG_LOAD(x0, i0 + offs[t]);
                CG_LOAD(x1, i1 + offs[t]);
                a00 += x0 * v; a01 += x1 * v;
                v = wc[t + k];     a10 += x0 * v; a11 += x1 * v;
                v = wc[t + 2 * k]; a20 += x0 * v; a21 += x1 * v;
                v = wc[t + 3 * k]; a30 += x0 * v; a31 += x1 * v;
            }
            CG_STORE(o0 + co * ostride, a00);       CG_STORE(o1 + co * ostride, a01);
            CG_STORE(o0 + (co + 1) * ostride, a10); CG_STORE(o1 + (co + 1) * ostride, a11);
            CG_STORE(o0 + (co + 2) * ostride, a20); CG_STORE(o1 + (co + 2) * ostride, a21);
            CG_STORE(o0 + (co + 3) * ostride, a30); CG_STORE(o1 + (co + 3) * ostride, a31);
        }
        for (; co < cout; co++) {
            /* four sets of two accumulators, taps dealt out in turn: eight FMAs in flight */
            const CG_T* wc = w + co * k;
            V a0, a1, b0, b1, c0, c1, d0, d1, x;
            CG_SPLAT(a0, bias ? bias[co] : 0);
            a1 = a0;
            CG_SPLAT(b0, 0);
            b1 = b0; c0 = b0; c1 = b0; d0 = b0; d1 = b0;
            for (t = 0; t + 4 <= k; t += 4) {
                const ptrdiff_t f0 = offs[t], f1 = offs[t + 1], f2 = offs[t + 2], f3 = offs[t + 3];
                CG_LOAD(x, i0 + f0); a0 += x * wc[t];
                CG_LOAD(x, i1 + f0); a1 += x * wc[t];
                CG_LOAD(x, i0 + f1); b0 += x * wc[t + 1];
                CG_LOAD(x, i1 + f1); b1 += x * wc[t + 1];
                CG_LOAD(x, i0 + f2); c0 += x * wc[t + 2];
                CG_LOAD(x, i1 + f2); c1 += x * wc[t + 2];
                CG_LOAD(x, i0 + f3); d0 += x * wc[t + 3];
                CG_LOAD(x, i1 + f3); d1 += x * wc[t + 3];
            }
            for (; t < k; t++) {
                CG_LOAD(x, i0 + offs[t]); a0 += x * wc[t];
                CG_LOAD(x, i1 + offs[t]); a1 += x * wc[t];
            }
            a0 += b0; a1 += b1; c0 += d0; c1 += d1; a0 += c0; a1 += c1;
            CG_STORE(o0 + co * ostride, a0);
            CG_STORE(o1 + co * ostride, a1);
        }
    }
}

/* dst[r*dst_rs + j] = src[r*src_rs + j] for r < rows, j < n */
static inline CG_ATTR void CG_FN(rows)(const CG_T* src, ptrdiff_t src_rs, CG_T* dst, ptrdiff_t dst_rs,
                                ptrdiff_t rows, ptrdiff_t n)
{
    typedef CG_FN(vec) V;
    ptrdiff_t r, j;
    if (n == CG_NL) {   /* rows of one vector (8 x 8 float images under AVX2) */
        for (r = 0; r < rows; r++) {
            V v;
            CG_LOAD(v, src);
            CG_STORE(dst, v);
            src += src_rs;
            dst += dst_rs;
        }
        return;
    }
    for (r = 0; r < rows; r++) {
        const CG_T* s = src + r * src_rs;
        CG_T* d = dst + r * dst_rs;
        for (j = 0; j + CG_NL <= n; j += CG_NL) {   /* vector moves: no overlap checks */
            V v;
            CG_LOAD(v, s + j);
            CG_STORE(d + j, v);
        }
        for (; j < n; j++)
            d[j] = s[j];
    }
}

static CG_ATTR void CG_FN(forward)(const cg_geo* q, const CG_T* x, const CG_T* w, const CG_T* bias,
                                   CG_T* out, CG_T* scratch)
{
    cg_sizes z;
    ptrdiff_t offs[CG_MAX_TAPS];
    ptrdiff_t koffs[CG_MAX_K];
    ptrdiff_t b, c, gi, co, t;
    const ptrdiff_t cg = q->c / q->g, fg = q->f / q->g, L = q->oh * q->ow;
    const int rowwise = q->ow % CG_NL == 0;   /* slots are the output's rows: written in place */
    CG_T* P;
    CG_T* tmp;
    cg_layout(q, &z, CG_NL, offs);
    for (c = 0; c < cg; c++)
        for (t = 0; t < z.taps; t++)
            koffs[c * z.taps + t] = c * z.plane + offs[t];
    P = scratch;                        /* zeroed by the caller: the borders stay zero */
    tmp = scratch + z.planes;
    for (b = 0; b < q->n; b++) {
        for (c = 0; c < q->c; c++)
            CG_FN(rows)(x + (b * q->c + c) * q->h * q->w, q->w,
                        P + c * z.plane + q->pt * q->wp + q->pl, q->wp, q->h, q->w);
        for (gi = 0; gi < q->g; gi++) {
            const CG_T* Pg = P + gi * cg * z.plane;
            const CG_T* wg = w + gi * fg * cg * z.taps;
            const CG_T* bg = bias ? bias + gi * fg : NULL;
            CG_T* og = out + (b * q->f + gi * fg) * L;
            if (rowwise) {
                CG_FN(corr)(Pg, wg, koffs, cg * z.taps, fg, og, L, L / CG_NL, q->ow / CG_NL, q->wp, q->ow, bg);
                continue;
            }
            CG_FN(corr)(Pg, wg, koffs, cg * z.taps, fg, tmp, z.mr, z.mr / CG_NL, z.mr / CG_NL, 0, 0, bg);
            for (co = 0; co < fg; co++)
                CG_FN(rows)(tmp + co * z.mr, q->wp, og + co * L, q->ow, q->oh, q->ow);
        }
    }
}

/* The input gradient as the adjoint of the forward loop, in two passes per input channel c:
 * 1. H[t] = sum over the output channels f of w[f][c][t] * grad[f] at every slot (four slots x
 *    CG_TC = 3 taps of accumulators, a broadcast weight serving four slots), stored with row
 *    stride wp inside zeros (Hz, laid out as the gradient would be in a padded plane);
 * 2. dx = sum over taps of H[t] read at the flipped offsets: the single-channel correlation
 *    (weights 1) over Hz, in place in dx when its rows are whole vectors.
 * (A scatter dP[position + off_t] += H[t] instead took 21.2 us against 15.5 at the small bench
 * size: its read-modify-writes of partly overlapping vectors stall store forwarding.) */
static CG_ATTR void CG_FN(input)(const cg_geo* q, const CG_T* grad, const CG_T* w, CG_T* dx,
                                 CG_T* scratch)
{
    typedef CG_FN(vec) V;
    cg_sizes z;
    ptrdiff_t offs[CG_MAX_TAPS];
    ptrdiff_t koffs[CG_MAX_TAPS];
    ptrdiff_t b, f, gi, ci, fo, t, sl, ch;
    const ptrdiff_t cg = q->c / q->g, fg = q->f / q->g, L = q->oh * q->ow, HW = q->h * q->w;
    const int rowwise = q->ow % CG_NL == 0;     /* the gradient read in place, row by row */
    const int rowwise_dx = q->w % CG_NL == 0;   /* dx written in place, row by row */
    ptrdiff_t nslots, nv, hrs, grs, gcs, nch;
    CG_T* Gw;
    CG_T* wt;
    CG_T* Hz;
    CG_T* ones;
    CG_T* tmp;
    cg_layout(q, &z, CG_NL, offs);
    nch = (z.taps + CG_TC - 1) / CG_TC;
    Gw = scratch;                       /* all zeroed by the caller */
    wt = Gw + q->f * z.mv;              /* wt[g][ci][chunk][fo][CG_TC], zero past the last tap */
    Hz = wt + q->c * nch * fg * CG_TC;  /* taps planes of zs: zeros, H's rows from z.front on */
    ones = Hz + z.taps * z.zs;
    tmp = ones + z.taps;
    for (gi = 0; gi < q->g; gi++)
        for (ci = 0; ci < cg; ci++)
            for (fo = 0; fo < fg; fo++)
                for (t = 0; t < z.taps; t++)
                    wt[((((gi * cg + ci) * nch + t / CG_TC) * fg) + fo) * CG_TC + t % CG_TC] =
                        w[((gi * fg + fo) * cg + ci) * z.taps + t];
    for (t = 0; t < z.taps; t++) {
        ones[t] = 1;
        koffs[t] = t * z.zs + z.front + z.q0 - offs[t];
    }
    if (rowwise) {
        nslots = L / CG_NL; nv = q->ow / CG_NL; hrs = q->wp; grs = q->ow; gcs = L;
    } else {
        nslots = z.mv / CG_NL; nv = nslots; hrs = 0; grs = 0; gcs = z.mv;
    }
    for (b = 0; b < q->n; b++) {
        const CG_T* G = rowwise ? grad + b * q->f * L : Gw;
        if (!rowwise)
            for (f = 0; f < q->f; f++)
                CG_FN(rows)(grad + (b * q->f + f) * L, q->ow, Gw + f * z.mv, q->wp, q->oh, q->ow);
        for (gi = 0; gi < q->g; gi++) {
            const CG_T* Gg = G + gi * fg * gcs;
            for (ci = 0; ci < cg; ci++) {
                CG_T* dplane = dx + (b * q->c + gi * cg + ci) * HW;
                ptrdiff_t r = 0, j = 0;   /* the next slot's row and vector */
                for (sl = 0; sl < nslots; sl += 4) {
                    /* four slots (a short last block repeats its last slot); their gradient
                       vectors stay in cache over the tap chunks */
                    const CG_T* gp[4];
                    ptrdiff_t hpos[4], u;
                    for (u = 0; u < 4; u++) {
                        gp[u] = Gg + r * grs + j * CG_NL;
                        hpos[u] = z.front + r * hrs + j * CG_NL;
                        if (sl + u + 1 < nslots && ++j == nv) { j = 0; r++; }
                    }
                    for (ch = 0; ch < nch; ch++) {
                        /* x three taps */
                        const CG_T* wc = wt + (((gi * cg + ci) * nch + ch) * fg) * CG_TC;
                        CG_T* Hc = Hz + ch * CG_TC * z.zs;
                        const ptrdiff_t tc = z.taps - ch * CG_TC < CG_TC ? z.taps - ch * CG_TC : CG_TC;
                        CG_T* hp[4];
                        V a0, a1, a2, b0, b1, b2, c0, c1, c2, d0, d1, d2, x0, x1, x2, x3;
                        for (u = 0; u < 4; u++)
                            hp[u] = Hc + hpos[u];
                        CG_SPLAT(a0, 0);
                        a1 = a0; a2 = a0; b0 = a0; b1 = a0; b2 = a0;
                        c0 = a0; c1 = a0; c2 = a0; d0 = a0; d1 = a0; d2 = a0;
                        for (fo = 0; fo < fg; fo++) {
                            const CG_T* wf = wc + fo * CG_TC;
                            const ptrdiff_t go = fo * gcs;
                            CG_T v;
                            CG_LOAD(x0, gp[0] + go);
                            CG_LOAD(x1, gp[1] + go);
                            CG_LOAD(x2, gp[2] + go);
                            CG_LOAD(x3, gp[3] + go);
                            v = wf[0]; a0 += x0 * v; b0 += x1 * v; c0 += x2 * v; d0 += x3 * v;
                            v = wf[1]; a1 += x0 * v; b1 += x1 * v; c1 += x2 * v; d1 += x3 * v;
                            v = wf[2]; a2 += x0 * v; b2 += x1 * v; c2 += x2 * v; d2 += x3 * v;
                        }
                        CG_STORE(hp[0], a0); CG_STORE(hp[1], b0); CG_STORE(hp[2], c0); CG_STORE(hp[3], d0);
                        if (tc > 1) {
                            CG_STORE(hp[0] + z.zs, a1); CG_STORE(hp[1] + z.zs, b1);
                            CG_STORE(hp[2] + z.zs, c1); CG_STORE(hp[3] + z.zs, d1);
                        }
                        if (tc > 2) {
                            CG_STORE(hp[0] + 2 * z.zs, a2); CG_STORE(hp[1] + 2 * z.zs, b2);
                            CG_STORE(hp[2] + 2 * z.zs, c2); CG_STORE(hp[3] + 2 * z.zs, d2);
                        }
                    }
                }
                if (rowwise_dx) {
                    CG_FN(corr)(Hz, ones, koffs, z.taps, 1, dplane, HW, HW / CG_NL, q->w / CG_NL, q->wp, q->w, NULL);
                } else {
                    CG_FN(corr)(Hz, ones, koffs, z.taps, 1, tmp, z.mr_in, z.mr_in / CG_NL, z.mr_in / CG_NL, 0, 0,
                                NULL);
                    CG_FN(rows)(tmp, q->wp, dplane, q->w, q->h, q->w);
                }
            }
        }
    }
}

static CG_ATTR void CG_FN(weight)(const cg_geo* q, const CG_T* grad, const CG_T* x, CG_T* dw,
                                  CG_T* scratch)
{
    typedef CG_FN(vec) V;
    cg_sizes z;
    ptrdiff_t offs[CG_MAX_TAPS];
    ptrdiff_t b, c, f, gi, ci, fo, t, r, j, l, fb, tb;
    const ptrdiff_t cg = q->c / q->g, fg = q->f / q->g, L = q->oh * q->ow;
    const int rowwise = q->ow % CG_NL == 0;   /* the gradient read in place, row by row */
    ptrdiff_t nrows, rowlen, prs, grs, gcs;
    CG_T* P;
    CG_T* Gw;
    CG_T* acc;
    cg_layout(q, &z, CG_NL, offs);
    P = scratch;                        /* all zeroed by the caller */
    Gw = P + z.planes;
    acc = Gw + q->f * z.mv;             /* (f, cg, taps) vectors of CG_NL partial sums */
    if (rowwise) {
        nrows = q->oh; rowlen = q->ow; prs = q->wp; grs = q->ow; gcs = L;
    } else {
        nrows = 1; rowlen = z.mv; prs = 0; grs = 0; gcs = z.mv;
    }
    for (b = 0; b < q->n; b++) {
        const CG_T* G = rowwise ? grad + b * q->f * L : Gw;
        for (c = 0; c < q->c; c++)
            CG_FN(rows)(x + (b * q->c + c) * q->h * q->w, q->w,
                        P + c * z.plane + q->pt * q->wp + q->pl, q->wp, q->h, q->w);
        if (!rowwise)
            for (f = 0; f < q->f; f++)
                CG_FN(rows)(grad + (b * q->f + f) * L, q->ow, Gw + f * z.mv, q->wp, q->oh, q->ow);
        for (gi = 0; gi < q->g; gi++) {
            for (fo = 0; fo < fg; fo += fb) {
                const CG_T* g0 = G + (gi * fg + fo) * gcs;
                const ptrdiff_t fstride = cg * z.taps * CG_NL;   /* next output channel in acc */
                fb = fg - fo >= 4 ? 4 : 1;
                for (ci = 0; ci < cg; ci++) {
                    const CG_T* s = P + (gi * cg + ci) * z.plane;
                    CG_T* a = acc + (((gi * fg + fo) * cg + ci) * z.taps) * CG_NL;
                    for (t = 0; t < z.taps; t += tb) {
                        tb = z.taps - t >= 3 ? 3 : z.taps - t;
                        if (fb == 4) {
                            /* four channels x three taps (a shorter tail repeats a tap and drops it) */
                            const CG_T* s0 = s + offs[t];
                            const CG_T* s1 = s + offs[tb > 1 ? t + 1 : t];
                            const CG_T* s2 = s + offs[tb > 2 ? t + 2 : t];
                            V a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32, x0, x1, x2, g;
                            CG_SPLAT(a00, 0);
                            a01 = a00; a02 = a00; a10 = a00; a11 = a00; a12 = a00;
                            a20 = a00; a21 = a00; a22 = a00; a30 = a00; a31 = a00; a32 = a00;
                            for (r = 0; r < nrows; r++)
                                for (j = 0; j < rowlen; j += CG_NL) {
                                    const ptrdiff_t ps = r * prs + j, gs = r * grs + j;
                                    CG_LOAD(x0, s0 + ps);
                                    CG_LOAD(x1, s1 + ps);
                                    CG_LOAD(x2, s2 + ps);
                                    CG_LOAD(g, g0 + gs);           a00 += g * x0; a01 += g * x1; a02 += g * x2;
                                    CG_LOAD(g, g0 + gcs + gs);     a10 += g * x0; a11 += g * x1; a12 += g * x2;
                                    CG_LOAD(g, g0 + 2 * gcs + gs); a20 += g * x0; a21 += g * x1; a22 += g * x2;
                                    CG_LOAD(g, g0 + 3 * gcs + gs); a30 += g * x0; a31 += g * x1; a32 += g * x2;
                                }
                            CG_ADD_TO(a + t * CG_NL, a00);
                            CG_ADD_TO(a + fstride + t * CG_NL, a10);
                            CG_ADD_TO(a + 2 * fstride + t * CG_NL, a20);
                            CG_ADD_TO(a + 3 * fstride + t * CG_NL, a30);
                            if (tb > 1) {
                                CG_ADD_TO(a + (t + 1) * CG_NL, a01);
                                CG_ADD_TO(a + fstride + (t + 1) * CG_NL, a11);
                                CG_ADD_TO(a + 2 * fstride + (t + 1) * CG_NL, a21);
                                CG_ADD_TO(a + 3 * fstride + (t + 1) * CG_NL, a31);
                            }
                            if (tb > 2) {
                                CG_ADD_TO(a + (t + 2) * CG_NL, a02);
                                CG_ADD_TO(a + fstride + (t + 2) * CG_NL, a12);
                                CG_ADD_TO(a + 2 * fstride + (t + 2) * CG_NL, a22);
                                CG_ADD_TO(a + 3 * fstride + (t + 2) * CG_NL, a32);
                            }
                        } else {
                            /* one channel, taps one at a time */
                            ptrdiff_t u;
                            for (u = 0; u < tb; u++) {
                                const CG_T* su = s + offs[t + u];
                                V a0, x0, gv;
                                CG_SPLAT(a0, 0);
                                for (r = 0; r < nrows; r++)
                                    for (j = 0; j < rowlen; j += CG_NL) {
                                        CG_LOAD(x0, su + r * prs + j);
                                        CG_LOAD(gv, g0 + r * grs + j);
                                        a0 += gv * x0;
                                    }
                                CG_ADD_TO(a + (t + u) * CG_NL, a0);
                            }
                        }
                    }
                }
            }
        }
    }
    for (l = 0; l < q->f * cg * z.taps; l++) {
        double total = 0;
        for (j = 0; j < CG_NL; j++)
            total += acc[l * CG_NL + j];
        dw[l] = (CG_T)total;
    }
}

/* out[c] = sum of grad (n, f, L) over its first and last axes: per channel, float vector partial
 * sums (four accumulators of CG_NL lanes) over the images' planes, flushed into a double total
 * once CG_SUM_BLOCK values have gone in (fewer than twice that per flush: 2048 values in 32
 * lanes, as accurate as hsum's blocks of 1024 in 16). */
static CG_ATTR void CG_FN(channel_sums)(const CG_T* grad, ptrdiff_t n, ptrdiff_t f, ptrdiff_t L, CG_T* out)
{
    typedef CG_FN(vec) V;
    ptrdiff_t b, c, l, k, since;
    for (c = 0; c < f; c++) {
        double total = 0;
        V s0, s1, s2, s3, x;
        CG_SPLAT(s0, 0);
        s1 = s0; s2 = s0; s3 = s0;
        since = 0;
        for (b = 0; b < n; b++) {
            const CG_T* p = grad + (b * f + c) * L;
            ptrdiff_t l0, end;
            for (l0 = 0; l0 < L; l0 = end) {   /* pieces of at most CG_SUM_BLOCK values */
                end = L - l0 > CG_SUM_BLOCK ? l0 + CG_SUM_BLOCK : L;
                for (l = l0; l + 4 * CG_NL <= end; l += 4 * CG_NL) {
                    CG_LOAD(x, p + l); s0 += x;
                    CG_LOAD(x, p + l + CG_NL); s1 += x;
                    CG_LOAD(x, p + l + 2 * CG_NL); s2 += x;
                    CG_LOAD(x, p + l + 3 * CG_NL); s3 += x;
                }
                for (; l + CG_NL <= end; l += CG_NL) {
                    CG_LOAD(x, p + l); s0 += x;
                }
                for (; l < end; l++)
                    total += p[l];
                since += end - l0;
                if (since >= CG_SUM_BLOCK) {   /* fewer than 2 * CG_SUM_BLOCK values per lane set */
                    s0 += s1; s2 += s3; s0 += s2;
                    for (k = 0; k < CG_NL; k++)
                        total += s0[k];
                    CG_SPLAT(s0, 0);
                    s1 = s0; s2 = s0; s3 = s0;
                    since = 0;
                }
            }
        }
        s0 += s1; s2 += s3; s0 += s2;
        for (k = 0; k < CG_NL; k++)
            total += s0[k];
        out[c] = (CG_T)total;
    }
}
