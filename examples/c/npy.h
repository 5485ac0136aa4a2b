/* A tiny reader and writer of NumPy .npy files: float32 and int64, little-endian, C order.
 *
 * The format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *   "\x93NUMPY", major, minor, header length (2 bytes LE in version 1, 4 bytes in 2 and 3),
 *   a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *   padded with spaces and a newline to a multiple of 64 bytes, then the raw data.
 */
#ifndef CONVSPEC_NPY_H
#define CONVSPEC_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

typedef struct {
    int ndim;
    long shape[NPY_MAX_DIMS];
    long size;   /* product of shape (1 for a 0-d array) */
    float *data; /* size floats, C order; free() it */
} npy_f32;

/* Read a '<f4' C-order array. Returns 0 on success, else -1 with a message in err. */
int npy_read_f32(const char *path, npy_f32 *out, char *err, size_t errlen);

/* Write a C-order array as '<f4' / '<i8'. Returns 0 on success, -1 on an I/O error. */
int npy_write_f32(const char *path, const float *data, int ndim, const long *shape);
int npy_write_i64(const char *path, const int64_t *data, int ndim, const long *shape);

#endif
