/* A tiny .npy reader and writer (see npy.h). Assumes a little-endian host (checked in main). */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long product(int ndim, const long *shape) {
    long size = 1;
    for (int i = 0; i < ndim; i++) size *= shape[i];
    return size;
}

/* The value after 'key': in a header dict, or NULL. */
static const char *field(const char *header, const char *key) {
    const char *at = strstr(header, key);
    if (!at) return NULL;
    at = strchr(at + strlen(key), ':');
    if (!at) return NULL;
    at++;
    while (*at == ' ') at++;
    return at;
}

int npy_read_f32(const char *path, npy_f32 *out, char *err, size_t errlen) {
    unsigned char magic[8];
    FILE *f = fopen(path, "rb");
    memset(out, 0, sizeof *out);
    if (!f) { snprintf(err, errlen, "cannot open %s", path); return -1; }
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0) {
        snprintf(err, errlen, "%s is not a .npy file", path); fclose(f); return -1;
    }
    unsigned long header_len;
    if (magic[6] == 1) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) { snprintf(err, errlen, "%s: truncated", path); fclose(f); return -1; }
        header_len = b[0] | (unsigned long)b[1] << 8;
    } else {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4) { snprintf(err, errlen, "%s: truncated", path); fclose(f); return -1; }
        header_len = b[0] | (unsigned long)b[1] << 8 | (unsigned long)b[2] << 16 | (unsigned long)b[3] << 24;
    }
    char *header = malloc(header_len + 1);
    if (!header || fread(header, 1, header_len, f) != header_len) {
        snprintf(err, errlen, "%s: truncated header", path); free(header); fclose(f); return -1;
    }
    header[header_len] = '\0';
    const char *descr = field(header, "'descr'");
    const char *order = field(header, "'fortran_order'");
    const char *shape = field(header, "'shape'");
    if (!descr || strncmp(descr, "'<f4'", 5) != 0) {
        snprintf(err, errlen, "%s: only '<f4' (float32, little-endian) is supported", path);
        free(header); fclose(f); return -1;
    }
    if (!order || strncmp(order, "False", 5) != 0 || !shape || *shape != '(') {
        snprintf(err, errlen, "%s: only C-order arrays are supported", path); free(header); fclose(f); return -1;
    }
    const char *p = shape + 1;
    while (*p && *p != ')') {
        char *end;
        long dim = strtol(p, &end, 10);
        if (end == p) { p++; continue; } /* skip ',' and ' ' */
        if (out->ndim == NPY_MAX_DIMS) { snprintf(err, errlen, "%s: too many dims", path); break; }
        out->shape[out->ndim++] = dim;
        p = end;
    }
    free(header);
    out->size = product(out->ndim, out->shape);
    out->data = malloc(out->size ? (size_t)out->size * sizeof(float) : 1);
    if (!out->data || fread(out->data, sizeof(float), (size_t)out->size, f) != (size_t)out->size) {
        snprintf(err, errlen, "%s: truncated data", path); free(out->data); out->data = NULL; fclose(f); return -1;
    }
    fclose(f);
    return 0;
}

static int write_array(const char *path, const char *descr, const void *data, size_t item, int ndim,
                       const long *shape) {
    char dims[256] = "", header[512];
    size_t used = 0;
    for (int i = 0; i < ndim; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, ndim == 1 ? "%ld," : (i ? ", %ld" : "%ld"),
                                 shape[i]);
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr, dims);
    /* magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64 bytes */
    int total = 10 + len + 1;
    int padding = (64 - total % 64) % 64;
    memset(header + len, ' ', (size_t)padding);
    len += padding;
    header[len++] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff),
                                  (unsigned char)(len >> 8)};
    long size = product(ndim, shape);
    int ok = fwrite(preamble, 1, 10, f) == 10 && fwrite(header, 1, (size_t)len, f) == (size_t)len
             && fwrite(data, item, (size_t)size, f) == (size_t)size;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int npy_write_f32(const char *path, const float *data, int ndim, const long *shape) {
    return write_array(path, "<f4", data, sizeof(float), ndim, shape);
}

int npy_write_i64(const char *path, const int64_t *data, int ndim, const long *shape) {
    return write_array(path, "<i8", data, sizeof(int64_t), ndim, shape);
}
