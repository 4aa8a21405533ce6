/*
 * Compiled inner loops for aggregator's parser workers.
 *
 * Each function here computes exactly what a pure-Python function in the
 * aggregator package computes (named beside it), only without the
 * interpreter's cost per byte or per value; aggregator falls back to the
 * Python when this module was not built. tests/test_speedups.py checks
 * that both give the same results.
 *
 * It is a top-level module, not aggregator._speedups: `python -m pytest`
 * from a checkout imports the aggregator package from the source tree,
 * where no compiled file lies, while this module still comes from the
 * installed environment.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * langid_walk(nextmove, rowbase, out_feat, text) -> (indexes, counts) | None
 *
 * py3langid's visit_counts: walk the byte DFA over `text` and count each
 * feature an output state emits. The answer is two buffers, int64 feature
 * indexes and their float32 counts, in the order the features first
 * occur, which is the order of the Counter that visit_counts returns; the
 * caller's NumPy scoring then sums in the same order and gives the same
 * floating-point result. None when no feature occurs.
 *
 * nextmove: uint32 per (state, byte); rowbase: int64 offset of each state's
 * row; out_feat: int32 feature per state, negative for none.
 */
static PyObject *
langid_walk(PyObject *self, PyObject *args)
{
    Py_buffer nextmove, rowbase, out, text;
    PyObject *result = NULL;
    int64_t *indexes = NULL;
    int32_t *slots = NULL;
    float *counts = NULL;

    if (!PyArg_ParseTuple(args, "y*y*y*y*", &nextmove, &rowbase, &out, &text))
        return NULL;

    const uint32_t *nm = (const uint32_t *)nextmove.buf;
    const int64_t *rows = (const int64_t *)rowbase.buf;
    const int32_t *features = (const int32_t *)out.buf;
    const Py_ssize_t nm_len = nextmove.len / (Py_ssize_t)sizeof(uint32_t);
    const Py_ssize_t states = rowbase.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t out_len = out.len / (Py_ssize_t)sizeof(int32_t);
    const unsigned char *bytes = (const unsigned char *)text.buf;
    const Py_ssize_t length = text.len;

    /* A feature per byte at most: an open-addressing table of twice that
     * many slots, a power of two, maps a feature to its place in the answer. */
    size_t capacity = 16;
    while (capacity < (size_t)length * 2)
        capacity <<= 1;
    indexes = PyMem_Malloc(sizeof(int64_t) * (size_t)(length ? length : 1));
    counts = PyMem_Malloc(sizeof(float) * (size_t)(length ? length : 1));
    slots = PyMem_Malloc(sizeof(int32_t) * capacity);
    if (indexes == NULL || counts == NULL || slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(slots, 0xff, sizeof(int32_t) * capacity); /* -1: empty */

    Py_ssize_t found = 0;
    uint32_t state = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if ((Py_ssize_t)state >= states) {
            PyErr_SetString(PyExc_ValueError, "langid_walk: a state outside the model");
            goto done;
        }
        int64_t at = rows[state] + bytes[i];
        if (at < 0 || at >= nm_len) {
            PyErr_SetString(PyExc_ValueError, "langid_walk: a move outside the model");
            goto done;
        }
        state = nm[at];
        if ((Py_ssize_t)state >= out_len) {
            PyErr_SetString(PyExc_ValueError, "langid_walk: a state outside the model");
            goto done;
        }
        int32_t feature = features[state];
        if (feature < 0)
            continue;
        size_t slot = ((uint32_t)feature * 2654435761u) & (capacity - 1);
        for (;;) {
            int32_t held = slots[slot];
            if (held < 0) {
                slots[slot] = (int32_t)found;
                indexes[found] = feature;
                counts[found] = 1.0f;
                found++;
                break;
            }
            if (indexes[held] == feature) {
                counts[held] += 1.0f;
                break;
            }
            slot = (slot + 1) & (capacity - 1);
        }
    }
    if (found == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = Py_BuildValue("(y#y#)", (const char *)indexes, found * (Py_ssize_t)sizeof(int64_t),
                           (const char *)counts, found * (Py_ssize_t)sizeof(float));

done:
    PyMem_Free(indexes);
    PyMem_Free(counts);
    PyMem_Free(slots);
    PyBuffer_Release(&nextmove);
    PyBuffer_Release(&rowbase);
    PyBuffer_Release(&out);
    PyBuffer_Release(&text);
    return result;
}

/*
 * minhash(shingles, seeds) -> tuple of int
 *
 * aggregator.dedupe._minhash: for every seed, the least splitmix64
 * finalizer value of (shingle XOR seed) over all shingles. Both buffers
 * hold uint64 values; the arithmetic wraps modulo 2^64 as NumPy's does.
 */
static PyObject *
minhash(PyObject *self, PyObject *args)
{
    Py_buffer shingles, seeds;
    if (!PyArg_ParseTuple(args, "y*y*", &shingles, &seeds))
        return NULL;
    const uint64_t *values = (const uint64_t *)shingles.buf;
    const uint64_t *keys = (const uint64_t *)seeds.buf;
    const Py_ssize_t n = shingles.len / (Py_ssize_t)sizeof(uint64_t);
    const Py_ssize_t k = seeds.len / (Py_ssize_t)sizeof(uint64_t);
    PyObject *result = NULL;

    if (n == 0) {
        result = PyTuple_New(0);
        goto done;
    }
    result = PyTuple_New(k);
    if (result == NULL)
        goto done;
    for (Py_ssize_t j = 0; j < k; j++) {
        const uint64_t seed = keys[j];
        uint64_t least = UINT64_MAX;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = values[i] ^ seed;
            x ^= x >> 30;
            x *= 0xBF58476D1CE4E5B9ull;
            x ^= x >> 27;
            x *= 0x94D049BB133111EBull;
            x ^= x >> 31;
            if (x < least)
                least = x;
        }
        PyObject *item = PyLong_FromUnsignedLongLong(least);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, j, item);
    }

done:
    PyBuffer_Release(&shingles);
    PyBuffer_Release(&seeds);
    return result;
}

static PyMethodDef methods[] = {
    {"langid_walk", langid_walk, METH_VARARGS,
     "langid_walk(nextmove, rowbase, out_feat, text) -> (indexes, counts) | None"},
    {"minhash", minhash, METH_VARARGS, "minhash(shingles, seeds) -> tuple of int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_aggregator_speedups",
    "Compiled inner loops for aggregator (see aggregator.speedups).", -1, methods,
};

PyMODINIT_FUNC
PyInit__aggregator_speedups(void)
{
    return PyModule_Create(&module);
}
