/* convspec_c — convolution and pooling in plain C, checked by convspec through golden vectors.
 *
 *   convspec_c --capabilities           print what it implements (JSON) and exit
 *   convspec_c IN_DIR [OUT_DIR]         run every case of IN_DIR/cases.txt
 *
 * For each line of IN_DIR/cases.txt it reads IN_DIR/<id>.<input>.npy and writes
 * OUT_DIR/<id>.<output>.npy, or OUT_DIR/<id>.unsupported with a reason. OUT_DIR is created if
 * missing; it defaults to IN_DIR, which is what the command backend `convspec check
 * 'cmd:./convspec_c'` expects.
 * The file format is documented in docs/vectors.md.
 *
 * Ops: conv (every padding mode, groups, dilation, bias), max_pool (with indices) and avg_pool,
 * forward, float32, spatial rank 1 to 3 — each rank runs through one 3-D loop nest with the
 * missing leading dims of size 1. Sums are accumulated in double.
 *
 * Build:  cc -O2 -std=c99 -o convspec_c convspec_c.c npy.c -lm        (or: make)
 * Seeded bugs for the test suite: -DBUG=1 keeps the *last* of equal maxima (breaks
 * MAXPOOL-TIE-1); -DBUG=2 ignores count_include_pad (breaks AVGPOOL-DEF-1).
 */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"

#ifndef BUG
#define BUG 0
#endif

#define MAX_RANK 3

/* One line of cases.txt. Spatial lists are stored right-aligned in 3 slots: a rank-m case uses
 * slots 3-m..2 and the leading slots hold the neutral size 1, stride 1, dilation 1, pads 0. */
typedef struct {
    char id[64], op[32], dtype[16], mode[16];
    int rank;
    long batch, in_channels, out_channels, groups, bias;
    long in_size[MAX_RANK], out_size[MAX_RANK], kernel[MAX_RANK], stride[MAX_RANK], dilation[MAX_RANK];
    long pad_before[MAX_RANK], pad_after[MAX_RANK];
    int ceil_mode, count_include_pad;
    long divisor_override;
} Case;

static const char *in_dir, *out_dir;

/* "1,2,3" -> values; "-" -> none. Returns the count. */
static int parse_list(const char *text, long *values, int max) {
    int count = 0;
    if (strcmp(text, "-") == 0) return 0;
    while (*text && count < max) {
        char *end;
        values[count++] = strtol(text, &end, 10);
        text = *end == ',' ? end + 1 : end;
        if (*end != ',') break;
    }
    return count;
}

static int parse_case(char *line, Case *c) {
    long x[2 + MAX_RANK], w[2 + MAX_RANK], y[2 + MAX_RANK], list[2 * MAX_RANK];
    int nx = 0, ny = 0, nw = 0;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < MAX_RANK; i++) {
        c->in_size[i] = c->out_size[i] = c->kernel[i] = c->stride[i] = c->dilation[i] = 1;
    }
    c->groups = 1;
    strcpy(c->mode, "zeros");
    long k[MAX_RANK], s[MAX_RANK], d[MAX_RANK], pads[2 * MAX_RANK];
    int nk = 0, ns = 0, nd = 0, npads = 0;
    for (char *word = strtok(line, " \n"); word; word = strtok(NULL, " \n")) {
        char *value = strchr(word, '=');
        if (!value) continue;
        *value++ = '\0';
        if (!strcmp(word, "id")) snprintf(c->id, sizeof c->id, "%s", value);
        else if (!strcmp(word, "op")) snprintf(c->op, sizeof c->op, "%s", value);
        else if (!strcmp(word, "dtype")) snprintf(c->dtype, sizeof c->dtype, "%s", value);
        else if (!strcmp(word, "mode")) snprintf(c->mode, sizeof c->mode, "%s", value);
        else if (!strcmp(word, "rank")) c->rank = atoi(value);
        else if (!strcmp(word, "x")) nx = parse_list(value, x, 2 + MAX_RANK);
        else if (!strcmp(word, "w")) nw = parse_list(value, w, 2 + MAX_RANK);
        else if (!strcmp(word, "y")) ny = parse_list(value, y, 2 + MAX_RANK);
        else if (!strcmp(word, "b")) c->bias = parse_list(value, list, 1) ? list[0] : 0;
        else if (!strcmp(word, "k")) nk = parse_list(value, k, MAX_RANK);
        else if (!strcmp(word, "s")) ns = parse_list(value, s, MAX_RANK);
        else if (!strcmp(word, "d")) nd = parse_list(value, d, MAX_RANK);
        else if (!strcmp(word, "pads")) npads = parse_list(value, pads, 2 * MAX_RANK);
        else if (!strcmp(word, "g")) c->groups = atol(value);
        else if (!strcmp(word, "ceil")) c->ceil_mode = atoi(value);
        else if (!strcmp(word, "cip")) c->count_include_pad = atoi(value);
        else if (!strcmp(word, "div")) c->divisor_override = atol(value);
    }
    int m = c->rank;
    if (m < 1 || m > MAX_RANK || nx != m + 2 || ny != m + 2 || nk != m || ns != m || nd != m || npads != 2 * m)
        return -1;
    int lead = MAX_RANK - m;
    c->batch = x[0];
    c->in_channels = x[1];
    c->out_channels = y[1];
    for (int i = 0; i < m; i++) {
        c->in_size[lead + i] = x[2 + i];
        c->out_size[lead + i] = y[2 + i];
        c->kernel[lead + i] = k[i];
        c->stride[lead + i] = s[i];
        c->dilation[lead + i] = d[i];
        c->pad_before[lead + i] = pads[2 * i];
        c->pad_after[lead + i] = pads[2 * i + 1];
    }
    (void)nw;
    return 0;
}

static void path_of(char *out, size_t len, const char *dir, const Case *c, const char *name) {
    snprintf(out, len, "%s/%s.%s.npy", dir, c->id, name);
}

static void unsupported(const Case *c, const char *reason) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.unsupported", out_dir, c->id);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", reason);
        fclose(f);
    }
}

static int load(const Case *c, const char *name, npy_f32 *array) {
    char path[4096], err[512];
    path_of(path, sizeof path, in_dir, c, name);
    if (npy_read_f32(path, array, err, sizeof err) != 0) {
        fprintf(stderr, "convspec_c: %s\n", err);
        return -1;
    }
    return 0;
}

static int save(const Case *c, const char *name, const float *data, int64_t *indices) {
    char path[4096];
    long shape[2 + MAX_RANK] = {c->batch, c->out_channels};
    for (int i = 0; i < c->rank; i++) shape[2 + i] = c->out_size[MAX_RANK - c->rank + i];
    path_of(path, sizeof path, out_dir, c, name);
    int status = indices ? npy_write_i64(path, indices, c->rank + 2, shape)
                         : npy_write_f32(path, data, c->rank + 2, shape);
    if (status != 0) fprintf(stderr, "convspec_c: cannot write %s\n", path);
    return status;
}

/* x~ of PAD-MODE-1: the source coordinate of padded coordinate i in a dim of size n, or -1 (zero). */
static long source(long i, long n, const char *mode) {
    if (i >= 0 && i < n) return i;
    if (!strcmp(mode, "reflect")) return i < 0 ? -i : 2 * (n - 1) - i;
    if (!strcmp(mode, "replicate")) return i < 0 ? 0 : n - 1;
    if (!strcmp(mode, "circular")) return i < 0 ? i + n : i - n;
    return -1;
}

/* y[n, o, p] = b[o] + sum_c sum_q w[o, c, q] * x~[n, g(o)*C_g + c, p*s + q*d - p_b]   (CONV-DEF-1) */
static int conv(const Case *c) {
    npy_f32 x, w, b = {0};
    if (load(c, "x", &x) || load(c, "w", &w) || (c->bias && load(c, "b", &b))) return -1;
    const long *S = c->in_size, *O = c->out_size, *K = c->kernel;
    long in_per_group = c->in_channels / c->groups, out_per_group = c->out_channels / c->groups;
    long spatial_in = S[0] * S[1] * S[2], spatial_out = O[0] * O[1] * O[2], taps = K[0] * K[1] * K[2];
    long count = c->batch * c->out_channels * spatial_out;
    float *y = malloc(count ? (size_t)count * sizeof(float) : 1);
    for (long n = 0; n < c->batch; n++)
        for (long o = 0; o < c->out_channels; o++) {
            long group = o / out_per_group;
            for (long p0 = 0; p0 < O[0]; p0++)
                for (long p1 = 0; p1 < O[1]; p1++)
                    for (long p2 = 0; p2 < O[2]; p2++) {
                        double sum = c->bias ? b.data[o] : 0.0;
                        for (long ch = 0; ch < in_per_group; ch++) {
                            const float *plane = x.data + (n * c->in_channels + group * in_per_group + ch) * spatial_in;
                            const float *kernel = w.data + (o * in_per_group + ch) * taps;
                            for (long q0 = 0; q0 < K[0]; q0++) {
                                long i0 = source(p0 * c->stride[0] + q0 * c->dilation[0] - c->pad_before[0], S[0], c->mode);
                                if (i0 < 0) continue;
                                for (long q1 = 0; q1 < K[1]; q1++) {
                                    long i1 = source(p1 * c->stride[1] + q1 * c->dilation[1] - c->pad_before[1], S[1], c->mode);
                                    if (i1 < 0) continue;
                                    for (long q2 = 0; q2 < K[2]; q2++) {
                                        long i2 = source(p2 * c->stride[2] + q2 * c->dilation[2] - c->pad_before[2], S[2], c->mode);
                                        if (i2 < 0) continue;
                                        sum += (double)kernel[(q0 * K[1] + q1) * K[2] + q2] * plane[(i0 * S[1] + i1) * S[2] + i2];
                                    }
                                }
                            }
                        }
                        y[((n * c->out_channels + o) * O[0] + p0) * O[1] * O[2] + p1 * O[2] + p2] = (float)sum;
                    }
        }
    int status = save(c, "y", y, NULL);
    free(x.data); free(w.data); free(b.data); free(y);
    return status;
}

/* Taps j of window p in one dim with p*s - p_b + j*d inside [lo, hi). */
static long taps_inside(const Case *c, int dim, long p, long lo, long hi) {
    long count = 0;
    for (long j = 0; j < c->kernel[dim]; j++) {
        long i = p * c->stride[dim] - c->pad_before[dim] + j * c->dilation[dim];
        count += i >= lo && i < hi;
    }
    return count;
}

/* max_pool: y = max over taps inside the input (MAXPOOL-DEF-1), NaN wins (MAXPOOL-NAN-1), the first
 * of equal maxima in row-major window order (MAXPOOL-TIE-1), flat index into the plane (MAXPOOL-INDEX-1).
 * avg_pool: y = (sum over taps inside the input) / divisor (AVGPOOL-DEF-1). */
static int pool(const Case *c, int average) {
    npy_f32 x;
    if (load(c, "x", &x)) return -1;
    const long *S = c->in_size, *O = c->out_size, *K = c->kernel;
    long spatial_in = S[0] * S[1] * S[2], spatial_out = O[0] * O[1] * O[2];
    long count = c->batch * c->in_channels * spatial_out;
    float *y = malloc(count ? (size_t)count * sizeof(float) : 1);
    int64_t *indices = malloc(count ? (size_t)count * sizeof(int64_t) : 1);
    long out = 0;
    for (long plane_index = 0; plane_index < c->batch * c->in_channels; plane_index++) {
        const float *plane = x.data + plane_index * spatial_in;
        for (long p0 = 0; p0 < O[0]; p0++)
            for (long p1 = 0; p1 < O[1]; p1++)
                for (long p2 = 0; p2 < O[2]; p2++, out++) {
                    double sum = 0.0;
                    float best = 0.0f;
                    long best_index = -1;
                    for (long q0 = 0; q0 < K[0]; q0++) {
                        long i0 = p0 * c->stride[0] - c->pad_before[0] + q0 * c->dilation[0];
                        if (i0 < 0 || i0 >= S[0]) continue;
                        for (long q1 = 0; q1 < K[1]; q1++) {
                            long i1 = p1 * c->stride[1] - c->pad_before[1] + q1 * c->dilation[1];
                            if (i1 < 0 || i1 >= S[1]) continue;
                            for (long q2 = 0; q2 < K[2]; q2++) {
                                long i2 = p2 * c->stride[2] - c->pad_before[2] + q2 * c->dilation[2];
                                if (i2 < 0 || i2 >= S[2]) continue;
                                long flat = (i0 * S[1] + i1) * S[2] + i2;
                                float v = plane[flat];
                                sum += v;
#if BUG == 1
                                int better = v >= best;
#else
                                int better = v > best;
#endif
                                if (best_index < 0 || (!isnan(best) && (better || isnan(v)))) {
                                    best = v;
                                    best_index = flat;
                                }
                            }
                        }
                    }
                    if (!average) {
                        y[out] = best;
                        indices[out] = best_index;
                        continue;
                    }
                    long divisor = 1;
                    for (int dim = 0; dim < MAX_RANK; dim++) {
                        long lo = 0, hi = S[dim];
#if BUG != 2
                        if (c->count_include_pad) {
                            lo = -c->pad_before[dim];
                            hi = S[dim] + c->pad_after[dim];
                        }
#endif
                        long p = dim == 0 ? p0 : dim == 1 ? p1 : p2;
                        divisor *= taps_inside(c, dim, p, lo, hi);
                    }
                    if (c->divisor_override) divisor = c->divisor_override;
                    y[out] = (float)(sum / (double)divisor);
                }
    }
    int status = save(c, "y", y, NULL);
    if (!average && status == 0) status = save(c, "indices", NULL, indices);
    free(x.data); free(y); free(indices);
    return status;
}

static const char CAPABILITIES[] =
    "{\"ops\": [\"conv\", \"max_pool\", \"avg_pool\"], \"ranks\": [1, 2, 3], \"dtypes\": [\"float32\"]}";

int main(int argc, char **argv) {
    const uint16_t one = 1;
    if (*(const unsigned char *)&one != 1) {
        fprintf(stderr, "convspec_c: the .npy reader assumes a little-endian host\n");
        return 2;
    }
    if (argc == 2 && !strcmp(argv[1], "--capabilities")) {
        puts(CAPABILITIES);
        return 0;
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: convspec_c --capabilities | convspec_c IN_DIR [OUT_DIR]\n");
        return 2;
    }
    in_dir = argv[1];
    out_dir = argc == 3 ? argv[2] : argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "convspec_c: cannot create %s: %s\n", out_dir, strerror(errno));
        return 2;
    }
    char path[4096], line[4096];
    snprintf(path, sizeof path, "%s/cases.txt", in_dir);
    FILE *cases = fopen(path, "r");
    if (!cases) {
        fprintf(stderr, "convspec_c: cannot open %s\n", path);
        return 2;
    }
    int failures = 0;
    while (fgets(line, sizeof line, cases)) {
        Case c;
        if (parse_case(line, &c) != 0) {
            if (c.id[0]) unsupported(&c, "spatial rank above 3 or an unreadable line");
            continue;
        }
        if (strcmp(c.dtype, "float32") != 0) unsupported(&c, "float32 only");
        else if (!strcmp(c.op, "conv")) failures += conv(&c) != 0;
        else if (!strcmp(c.op, "max_pool")) failures += pool(&c, 0) != 0;
        else if (!strcmp(c.op, "avg_pool")) failures += pool(&c, 1) != 0;
        else unsupported(&c, "op not implemented (forward conv, max_pool and avg_pool only)");
    }
    fclose(cases);
    return failures ? 1 : 0;
}
