/* The common case of SPDY/3 name/value block parsing, in C.
 *
 * parse_plain(raw, max_count) cuts a decompressed NV block into a list of (name, value)
 * pairs when the block is well formed and plain: every length inside the block, no more
 * than max_count pairs, names made of valid lowercase token characters (optionally after
 * one leading ':'), no duplicate names, and no NUL, CR or LF in any value. Anything else
 * (errors, multi-values, huge blocks) returns None and the pure-Python parser in
 * headers.py, which owns every error message, handles the block. So this module decides
 * nothing that parser does not, it only makes the usual case cheap.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Names allowed after an optional leading ':' (same set as headers._VALID_NAME):
 * 0x21-0x7e except ':' and 'A'-'Z'. */
static unsigned char name_ok[256];

/* Duplicate names are checked pairwise; larger blocks go to the Python parser. */
#define MAX_PAIRWISE 64

static inline uint32_t read_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static PyObject *parse_plain(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    Py_ssize_t max_count;
    if (!PyArg_ParseTuple(args, "y*n", &view, &max_count))
        return NULL;
    const unsigned char *raw = view.buf;
    Py_ssize_t total = view.len;
    Py_ssize_t starts[2 * MAX_PAIRWISE];
    Py_ssize_t lengths[2 * MAX_PAIRWISE];
    PyObject *result = NULL;

    if (total < 4)
        goto plain_no;
    uint32_t count = read_u32(raw);
    if (count == 0 || count > MAX_PAIRWISE || (Py_ssize_t)count > max_count)
        goto plain_no;
    Py_ssize_t pos = 4;
    for (uint32_t i = 0; i < 2 * count; i++) {
        if (total - pos < 4)
            goto plain_no;
        uint32_t length = read_u32(raw + pos);
        pos += 4;
        if ((Py_ssize_t)length > total - pos)
            goto plain_no;
        starts[i] = pos;
        lengths[i] = (Py_ssize_t)length;
        pos += (Py_ssize_t)length;
    }
    if (pos != total)
        goto plain_no;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *name = raw + starts[2 * i];
        Py_ssize_t name_len = lengths[2 * i];
        Py_ssize_t first = (name_len > 0 && name[0] == ':') ? 1 : 0;
        if (name_len - first < 1)
            goto plain_no;
        for (Py_ssize_t k = first; k < name_len; k++)
            if (!name_ok[name[k]])
                goto plain_no;
        for (uint32_t j = 0; j < i; j++)
            if (lengths[2 * j] == name_len
                && memcmp(raw + starts[2 * j], name, (size_t)name_len) == 0)
                goto plain_no;
        const unsigned char *value = raw + starts[2 * i + 1];
        Py_ssize_t value_len = lengths[2 * i + 1];
        if (memchr(value, '\0', (size_t)value_len) || memchr(value, '\r', (size_t)value_len)
            || memchr(value, '\n', (size_t)value_len))
            goto plain_no;
    }
    result = PyList_New((Py_ssize_t)count);
    if (result == NULL)
        goto done;
    for (uint32_t i = 0; i < count; i++) {
        PyObject *pair = Py_BuildValue(
            "(y#y#)", (const char *)raw + starts[2 * i], lengths[2 * i],
            (const char *)raw + starts[2 * i + 1], lengths[2 * i + 1]);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)i, pair);
    }
    goto done;

plain_no:
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_plain", parse_plain, METH_VARARGS,
     "parse_plain(raw, max_count) -> list of (name, value) pairs, or None when the block "
     "is not plain (see headers.parse_nv_block)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_nvfast", "Fast path of the SPDY/3 NV block parser.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nvfast(void)
{
    for (int c = 0x21; c <= 0x7e; c++)
        name_ok[c] = !(c == ':' || (c >= 'A' && c <= 'Z'));
    return PyModule_Create(&module_def);
}
