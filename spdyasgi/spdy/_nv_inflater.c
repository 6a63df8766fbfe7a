/* The header-block inflater: headers.HeaderDecompressor's zlib context, in C. */
#include "_nvfast.h"
#include <string.h>
#include <zlib.h>

/* Inflater(dictionary): one direction's zlib context for received header blocks.
 *
 * inflate(block, limit) -> bytes of at most `limit` bytes, or (code, message) when the
 * block cannot be decoded: 1 = corrupt data (zlib's message), 2 = more than `limit` bytes
 * (decoding stops one byte past it, so a header bomb costs what its compressed bytes
 * cost), 3 = the peer ended its zlib stream. headers.HeaderDecompressor turns a failure
 * into its CompressionError, with its own wording; it is the same contract as its
 * pure-Python path over the zlib module (tests/engine/test_fuzz.py holds them together).
 * Doing it here saves the zlib module's per-call buffer, checks and attribute reads. */
typedef struct {
    PyObject_HEAD
    z_stream strm;
    int ready;
    int ended;
    PyObject *dictionary;
} InflaterObject;

static int inflater_init(InflaterObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *dictionary;
    static char *names[] = {"dictionary", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "S", names, &dictionary))
        return -1;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Inflater already initialised");
        return -1;
    }
    memset(&self->strm, 0, sizeof(self->strm));
    if (inflateInit(&self->strm) != Z_OK) {
        PyErr_SetString(PyExc_MemoryError, "zlib inflateInit failed");
        return -1;
    }
    self->ready = 1;
    self->ended = 0;
    Py_XSETREF(self->dictionary, Py_NewRef(dictionary));
    return 0;
}

static void inflater_dealloc(InflaterObject *self)
{
    if (self->ready)
        inflateEnd(&self->strm);
    Py_XDECREF(self->dictionary);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *inflate_failure(int code, const char *message)
{
    return Py_BuildValue("(is)", code, message != NULL ? message : "");
}

/* Output asked for first: almost every header block fits. */
#define FIRST_OUTPUT 2048

static PyObject *inflate_block(InflaterObject *self, PyObject *block_obj, PyObject *limit_obj);
static PyObject *inflate_bytes(InflaterObject *self, const Bytef *in, Py_ssize_t in_len,
                               Py_ssize_t limit);

static PyObject *inflater_inflate(InflaterObject *self, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "inflate(block, limit)");
        return NULL;
    }
    return inflate_block(self, args[0], args[1]);
}

/* inflate_request(block, limit, max_count): inflate, parse and check a request's block
 * in one call. (headers, scanned) when the block is plain (scanned: what scan_request
 * gives, None when it declines); the inflated bytes when the block is not plain (the
 * Python parser decides); (code, message) as inflate() when it does not inflate. */
static PyObject *inflater_inflate_request(InflaterObject *self, PyObject *const *args,
                                          Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "inflate_request(block, limit, max_count)");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t max_count = PyLong_AsSsize_t(args[2]);
    if (max_count == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer block;
    if (PyObject_GetBuffer(args[0], &block, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = nv_inflate_request((PyObject *)self, (const unsigned char *)block.buf,
                                          block.len, limit, max_count);
    PyBuffer_Release(&block);
    return result;
}

/* The body of inflate_request for a block already in memory (also the C acceptor's,
 * _nv_accept.c). `inflater` must be an Inflater. */
PyObject *nv_inflate_request(PyObject *inflater, const unsigned char *buf, Py_ssize_t len,
                             Py_ssize_t limit, Py_ssize_t max_count)
{
    PyObject *raw = inflate_bytes((InflaterObject *)inflater, buf, len, limit);
    if (raw == NULL || !PyBytes_CheckExact(raw))
        return raw;  /* an error, or (code, message) */
    PyObject *headers = nv_parse_plain_block((const unsigned char *)PyBytes_AS_STRING(raw),
                                          PyBytes_GET_SIZE(raw), max_count);
    if (headers == NULL) {
        Py_DECREF(raw);
        return NULL;
    }
    if (headers == Py_None) {
        Py_DECREF(headers);
        return raw;
    }
    Py_DECREF(raw);
    PyObject *scanned = nv_scan_request(NULL, headers);
    if (scanned == NULL) {
        Py_DECREF(headers);
        return NULL;
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(headers);
        Py_DECREF(scanned);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, headers);
    PyTuple_SET_ITEM(result, 1, scanned);
    return result;
}

static PyObject *inflate_block(InflaterObject *self, PyObject *block_obj, PyObject *limit_obj)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Inflater not initialised");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(limit_obj);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer block;
    if (PyObject_GetBuffer(block_obj, &block, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = inflate_bytes(self, (const Bytef *)block.buf, block.len, limit);
    PyBuffer_Release(&block);
    return result;
}

static PyObject *inflate_bytes(InflaterObject *self, const Bytef *in, Py_ssize_t in_len,
                               Py_ssize_t limit)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Inflater not initialised");
        return NULL;
    }
    if (limit < 0 || limit > PY_SSIZE_T_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "limit out of range");
        return NULL;
    }
    if (self->ended)
        return inflate_failure(3, NULL);
    if ((size_t)in_len > UINT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "header block too large");
        return NULL;
    }
    Py_ssize_t most = limit + 1;  /* one byte past the limit tells "over" from "exactly" */
    Py_ssize_t size = most < FIRST_OUTPUT ? most : FIRST_OUTPUT;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    z_stream *strm = &self->strm;
    strm->next_in = (Bytef *)in;
    strm->avail_in = (uInt)in_len;
    Py_ssize_t produced = 0;
    PyObject *failure = NULL;
    for (;;) {
        strm->next_out = (Bytef *)PyBytes_AS_STRING(out) + produced;
        strm->avail_out = (uInt)(size - produced);
        int ret = inflate(strm, Z_SYNC_FLUSH);
        produced = size - (Py_ssize_t)strm->avail_out;
        if (ret == Z_NEED_DICT) {
            if (inflateSetDictionary(strm, (const Bytef *)PyBytes_AS_STRING(self->dictionary),
                                     (uInt)PyBytes_GET_SIZE(self->dictionary)) != Z_OK) {
                failure = inflate_failure(1, "the peer's dictionary is not the SPDY one");
                break;
            }
            continue;
        }
        if (ret == Z_STREAM_END) {
            self->ended = 1;
            failure = inflate_failure(3, NULL);
            break;
        }
        if (ret != Z_OK && ret != Z_BUF_ERROR) {
            failure = inflate_failure(1, strm->msg);
            break;
        }
        if (strm->avail_out > 0)
            break;  /* everything the input gives is out */
        if (produced >= most) {
            failure = inflate_failure(2, NULL);
            break;
        }
        Py_ssize_t grown = size * 2 < most ? size * 2 : most;
        if (_PyBytes_Resize(&out, grown) < 0) {
            strm->next_in = NULL;
            strm->avail_in = 0;
            return NULL;
        }
        size = grown;
    }
    strm->next_in = NULL;
    strm->avail_in = 0;
    if (failure != NULL) {
        Py_DECREF(out);
        return failure;
    }
    if (produced != size && _PyBytes_Resize(&out, produced) < 0)
        return NULL;
    return out;
}

static PyMethodDef inflater_methods[] = {
    {"inflate", (PyCFunction)(void (*)(void))inflater_inflate, METH_FASTCALL,
     "inflate(block, limit) -> bytes, or (code, message) (see the type's comment)."},
    {"inflate_request", (PyCFunction)(void (*)(void))inflater_inflate_request, METH_FASTCALL,
     "inflate_request(block, limit, max_count) -> (headers, scanned), the inflated bytes "
     "when not plain, or (code, message)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject NvInflaterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spdyasgi.spdy._nvfast.Inflater",
    .tp_basicsize = sizeof(InflaterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A zlib inflate context for one direction's header blocks.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)inflater_init,
    .tp_dealloc = (destructor)inflater_dealloc,
    .tp_methods = inflater_methods,
};
