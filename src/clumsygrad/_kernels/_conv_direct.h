/* Direct stride-1 2-d convolution loops for few input channels (used by _conv.pyx).
 *
 * Where the column matrix would be skinny (C/G * kh * kw small: few multiply-adds per value
 * moved), convolving directly beats im2col + BLAS.  Method: every (H, W) plane is zero-padded
 * once into a plane of hp x wp (hp = H + pt + pb, wp = W + pl + pr); seen flat, output position
 * (r, j) of a stride-1 convolution is then position m = r*wp + j, and tap (i, j') reads the plane
 * at m + i*dh*wp + j'*dw.  So each output channel is one long vectorisable correlation over m
 * (the wp - ow columns at the end of each row are computed and dropped).
 *
 *   forward:       out[f][m] = bias[f] + sum_{c,t} w[f][c][t] * P[c][m + off_t]
 *   input grad:    per tap, the sum over output channels of weight x gradient (H[t], laid out with
 *                  row stride wp inside zeros), then dx = the sum over taps of H[t] read at the
 *                  flipped offsets
 *   weight grad:   dw[f][c][t] = sum_{images, m} Gw[f][m] * P[c][m + off_t], Gw the gradient with
 *                  row stride wp (zero in the dropped columns), partial sums kept per lane
 *
 * Loops are written on GCC/clang generic vectors: 16-byte ones for the baseline copies, and on
 * x86-64 (GCC or clang, not Apple) a second copy of each loop on 32-byte vectors for AVX2+FMA,
 * which runs when the CPU has both (__builtin_cpu_supports); elsewhere the baseline copy runs
 * (and _conv.pyx uses the direct loops only with the AVX2+FMA copies unless told otherwise).
 * Compilers without generic vectors (MSVC) get no direct loops: CG_DIRECT is 0 and _conv.pyx
 * keeps im2col + BLAS for every size.
 */
#ifndef CLUMSYGRAD_CONV_DIRECT_H
#define CLUMSYGRAD_CONV_DIRECT_H

#include <stddef.h>
#include <string.h>

#define CG_MAX_TAPS 64   /* kh * kw the direct loops take (their tap offsets live on the stack) */
#define CG_MAX_K 1024   /* C/G * kh * kw the forward loop takes (its offset table is on the stack) */
#define CG_SUM_BLOCK 1024   /* float values summed before a flush into double (bias gradient) */
#define CG_TC 3          /* taps per block of the input gradient's accumulators */
#define CG_SLACK 32      /* elements after the padded planes: the vector loops read past the end */

typedef struct {
    ptrdiff_t n, c, h, w, f, kh, kw, oh, ow, pt, pl, dh, dw, g, hp, wp;
} cg_geo;

typedef struct {
    ptrdiff_t taps, plane, planes;   /* a padded plane; C of them plus slack */
    ptrdiff_t mr;                    /* forward: positions computed per channel (>= M) */
    ptrdiff_t front, zs, q0, mr_in;  /* input grad: zeros before Hz's rows, its tap stride,
                                        the first position needed, positions computed */
    ptrdiff_t mv;                    /* weight grad: Gw's channel stride (M rounded up) */
} cg_sizes;

static ptrdiff_t cg_round_up(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b * b; }

static void cg_layout(const cg_geo* q, cg_sizes* z, ptrdiff_t blk, ptrdiff_t* offs)
{
    ptrdiff_t i, j, m = (q->oh - 1) * q->wp + q->ow;
    z->taps = q->kh * q->kw;
    z->plane = q->hp * q->wp;
    z->planes = q->c * z->plane + CG_SLACK;
    z->mr = cg_round_up(m, blk);
    z->front = (q->kh - 1) * q->dh * q->wp + (q->kw - 1) * q->dw;
    z->zs = z->front + z->plane + CG_SLACK;
    z->q0 = q->pt * q->wp + q->pl;
    z->mr_in = cg_round_up((q->h - 1) * q->wp + q->w, blk);
    z->mv = cg_round_up(m, blk);
    if (offs != NULL)
        for (i = 0; i < q->kh; i++)
            for (j = 0; j < q->kw; j++)
                offs[i * q->kw + j] = i * q->dh * q->wp + j * q->dw;
}

/* Elements of zeroed scratch the loops need: kind 0 forward, 1 input grad, 2 weight grad; nl the
 * lanes of the widest vector of the element type (32 bytes: 8 float, 4 double). */
static ptrdiff_t cg_direct_scratch(const cg_geo* q, int kind, ptrdiff_t nl)
{
    cg_sizes z;
    const ptrdiff_t cg = q->c / q->g, fg = q->f / q->g;
    if (kind == 0) {
        cg_layout(q, &z, nl, NULL);
        return z.planes + fg * z.mr;
    }
    if (kind == 1) {
        cg_layout(q, &z, nl, NULL);
        return q->f * z.mv + q->c * ((z.taps + CG_TC - 1) / CG_TC) * fg * CG_TC + z.taps * z.zs + z.taps
               + z.mr_in;
    }
    cg_layout(q, &z, nl, NULL);
    return z.planes + q->f * z.mv + q->f * cg * z.taps * nl;
}

#if defined(__GNUC__) || defined(__clang__)
#define CG_DIRECT 1

#define CG_LOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define CG_STORE(p, v) memcpy((p), &(v), sizeof(v))
#define CG_SPLAT(v, s) ((v) = (__typeof__(v)){0} + (CG_T)(s))
#define CG_ADD_TO(p, v) do { __typeof__(v) cg_t_; CG_LOAD(cg_t_, p); cg_t_ += (v); CG_STORE(p, cg_t_); } while (0)
#define CG_PASTE2(a, b) cg_##a##_##b
#define CG_PASTE(a, b) CG_PASTE2(a, b)
#define CG_FN(name) CG_PASTE(name, CG_SUFFIX)

#if defined(__x86_64__) && !defined(__APPLE__)
#define CG_DISPATCH 1
#else
#define CG_DISPATCH 0
#endif

/* baseline copies: 16-byte vectors (SSE2 on x86-64, NEON on aarch64) */
#define CG_ATTR
#define CG_VBYTES 16
#define CG_T float
#define CG_NL 4
#define CG_SUFFIX f_base
#include "_conv_direct_body.h"
#undef CG_T
#undef CG_NL
#undef CG_SUFFIX
#define CG_T double
#define CG_NL 2
#define CG_SUFFIX d_base
#include "_conv_direct_body.h"
#undef CG_T
#undef CG_NL
#undef CG_SUFFIX
#undef CG_ATTR
#undef CG_VBYTES

#if CG_DISPATCH
/* AVX2 + FMA copies: 32-byte vectors */
#define CG_ATTR __attribute__((target("avx2,fma")))
#define CG_VBYTES 32
#define CG_T float
#define CG_NL 8
#define CG_SUFFIX f_avx2
#include "_conv_direct_body.h"
#undef CG_T
#undef CG_NL
#undef CG_SUFFIX
#define CG_T double
#define CG_NL 4
#define CG_SUFFIX d_avx2
#include "_conv_direct_body.h"
#undef CG_T
#undef CG_NL
#undef CG_SUFFIX
#undef CG_ATTR
#undef CG_VBYTES

static int cg_isa_ = -1;   /* -1 not probed yet, 0 baseline, 1 AVX2 + FMA */

static int cg_direct_isa(void)
{
    if (cg_isa_ < 0) {
        __builtin_cpu_init();
        cg_isa_ = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
    }
    return cg_isa_;
}

/* For tests and measurements: 0 forces the baseline copies, 1 AVX2 + FMA where the CPU has them,
 * -1 back to probing.  Returns the instruction set now in use. */
static int cg_direct_set_isa(int isa)
{
    cg_isa_ = -1;
    if (isa == 0 || (isa == 1 && cg_direct_isa() == 0))
        cg_isa_ = 0;
    return cg_direct_isa();
}

#define CG_PICK(fn, t) (cg_direct_isa() ? cg_##fn##_##t##_avx2 : cg_##fn##_##t##_base)
#else
static int cg_direct_isa(void) { return 0; }
static int cg_direct_set_isa(int isa) { (void)isa; return 0; }
#define CG_PICK(fn, t) cg_##fn##_##t##_base
#endif

#else   /* no generic vectors: no direct loops (never called: CG_DIRECT is 0) */
#define CG_DIRECT 0
typedef void (*cg_unused_fn)(void);
static int cg_direct_isa(void) { return 0; }
static int cg_direct_set_isa(int isa) { (void)isa; return 0; }
static void cg_forward_f_base(const cg_geo* q, const float* x, const float* w, const float* b, float* o, float* s) {}
static void cg_forward_d_base(const cg_geo* q, const double* x, const double* w, const double* b, double* o, double* s) {}
static void cg_input_f_base(const cg_geo* q, const float* g, const float* w, float* o, float* s) {}
static void cg_input_d_base(const cg_geo* q, const double* g, const double* w, double* o, double* s) {}
static void cg_weight_f_base(const cg_geo* q, const float* g, const float* x, float* o, float* s) {}
static void cg_weight_d_base(const cg_geo* q, const double* g, const double* x, double* o, double* s) {}
static void cg_channel_sums_f_base(const float* g, ptrdiff_t n, ptrdiff_t f, ptrdiff_t L, float* o) {}
static void cg_channel_sums_d_base(const double* g, ptrdiff_t n, ptrdiff_t f, ptrdiff_t L, double* o) {}
#define CG_PICK(fn, t) cg_##fn##_##t##_base
#endif

/* Lanes of the vectors the direct loops run on now (float: 8 under AVX2, else 4; double half). */
static ptrdiff_t cg_direct_lanes(int dbl) { return (cg_direct_isa() ? 32 : 16) / (dbl ? 8 : 4); }

static void cg_direct_forward_f(const cg_geo* q, const float* x, const float* w, const float* bias,
                                float* out, float* scratch)
{ CG_PICK(forward, f)(q, x, w, bias, out, scratch); }
static void cg_direct_forward_d(const cg_geo* q, const double* x, const double* w, const double* bias,
                                double* out, double* scratch)
{ CG_PICK(forward, d)(q, x, w, bias, out, scratch); }
static void cg_direct_input_f(const cg_geo* q, const float* grad, const float* w, float* dx, float* scratch)
{ CG_PICK(input, f)(q, grad, w, dx, scratch); }
static void cg_direct_input_d(const cg_geo* q, const double* grad, const double* w, double* dx, double* scratch)
{ CG_PICK(input, d)(q, grad, w, dx, scratch); }
static void cg_direct_weight_f(const cg_geo* q, const float* grad, const float* x, float* dw, float* scratch)
{ CG_PICK(weight, f)(q, grad, x, dw, scratch); }
static void cg_direct_weight_d(const cg_geo* q, const double* grad, const double* x, double* dw, double* scratch)
{ CG_PICK(weight, d)(q, grad, x, dw, scratch); }

static void cg_channel_sums_f(const float* grad, ptrdiff_t n, ptrdiff_t f, ptrdiff_t L, float* out)
{ CG_PICK(channel_sums, f)(grad, n, f, L, out); }
static void cg_channel_sums_d(const double* grad, ptrdiff_t n, ptrdiff_t f, ptrdiff_t L, double* out)
{ CG_PICK(channel_sums, d)(grad, n, f, L, out); }

#endif
