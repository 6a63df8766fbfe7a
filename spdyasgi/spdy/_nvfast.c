/* The common cases of SPDY/3 name/value block parsing, request checking and reply
 * framing, in C.
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
#include <structmember.h>
#include <zlib.h>

/* Names allowed after an optional leading ':' (same set as headers._VALID_NAME):
 * 0x21-0x7e except ':' and 'A'-'Z'. */
static unsigned char name_ok[256];

/* Duplicate names are checked pairwise; larger blocks go to the Python parser. */
#define MAX_PAIRWISE 64

/* Names and values that come in almost every request, made once: handing out the same
 * bytes objects saves an allocation per header, and their hashes (dict and set lookups
 * downstream) are computed once for the life of the process instead of per request. */
static const char *const common_strings[] = {
    ":method", ":path", ":version", ":host", ":scheme", ":status",
    "accept", "accept-encoding", "accept-language", "accept-charset", "user-agent",
    "cookie", "referer", "origin", "cache-control", "pragma", "range", "if-range",
    "if-none-match", "if-modified-since", "content-type", "content-length", "authorization",
    "x-requested-with", "x-forwarded-for", "x-forwarded-proto", "dnt", "te",
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HTTP/1.1", "HTTP/1.0",
    "http", "https", "/", "*/*", "gzip, deflate", "gzip, deflate, br", "no-cache",
};
#define COMMON_COUNT (sizeof(common_strings) / sizeof(common_strings[0]))
static PyObject *common_objects[COMMON_COUNT];
static Py_ssize_t common_lengths[COMMON_COUNT];

/* The common strings grouped by length, so a lookup compares only same-length
 * candidates, and only those whose first byte matches (most names differ there). */
#define COMMON_MAX_LENGTH 24
static unsigned char common_by_length[COMMON_MAX_LENGTH + 1][COMMON_COUNT];
static unsigned char common_per_length[COMMON_MAX_LENGTH + 1];

static PyObject *bytes_of(const unsigned char *data, Py_ssize_t length)
{
    if (length > 0 && length <= COMMON_MAX_LENGTH) {
        const unsigned char *candidates = common_by_length[length];
        for (int i = 0; i < common_per_length[length]; i++) {
            const char *common = common_strings[candidates[i]];
            if ((unsigned char)common[0] == data[0]
                && memcmp(common, data, (size_t)length) == 0)
                return Py_NewRef(common_objects[candidates[i]]);
        }
    }
    return PyBytes_FromStringAndSize((const char *)data, length);
}

static inline uint32_t read_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The block `raw[:total]` as a list of pairs, Py_None when not plain, NULL on error. */
static PyObject *parse_plain_block(const unsigned char *raw, Py_ssize_t total,
                                   Py_ssize_t max_count)
{
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
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)i, pair);
        for (int k = 0; k < 2; k++) {
            PyObject *part = bytes_of(raw + starts[2 * i + k], lengths[2 * i + k]);
            if (part == NULL) {
                Py_CLEAR(result);
                goto done;
            }
            PyTuple_SET_ITEM(pair, k, part);
        }
    }
    goto done;

plain_no:
    result = Py_NewRef(Py_None);
done:
    return result;
}

static PyObject *parse_plain(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    Py_ssize_t max_count;
    if (!PyArg_ParseTuple(args, "y*n", &view, &max_count))
        return NULL;
    PyObject *result = parse_plain_block(view.buf, view.len, max_count);
    PyBuffer_Release(&view);
    return result;
}

/* scan_request(headers) -> ((method, path, host, version, other_headers), content_length)
 * for a request that is plainly valid, else None.
 *
 * The common case of receiver._check_request + request_head.request_head in one pass:
 * the five request pseudo-headers each exactly once, nothing else starting with ':', a
 * :path that starts with '/' (or is '*'), none of the headers the engine drops (the list
 * constants.DROPPED_REQUEST_HEADERS hands over through configure(), save its one kept
 * name/value pair, te: trailers), at most one cookie header
 * and at most one content-length of 1 to 18 digits (-1 when there is none). Anything
 * else returns None and the Python code decides, with its error messages; so this
 * decides nothing that code does not (tests/engine/test_fuzz.py compares the two). */

static int name_is(const char *name, Py_ssize_t len, const char *want, Py_ssize_t want_len)
{
    return len == want_len && memcmp(name, want, (size_t)want_len) == 0;
}

/* The request headers the engine drops, set once by configure() from spdy/constants.py
 * (the one list), and the name/value pair of them that is kept. Until configured,
 * scan_request declines every request. */
#define MAX_DROPPED 16
#define MAX_DROPPED_NAME 32
static char dropped_names[MAX_DROPPED][MAX_DROPPED_NAME];
static Py_ssize_t dropped_lengths[MAX_DROPPED];
static int dropped_count = -1;
static char kept_name[MAX_DROPPED_NAME], kept_value[MAX_DROPPED_NAME];
static Py_ssize_t kept_name_length, kept_value_length;

static int copy_short(PyObject *obj, char *to, Py_ssize_t *length)
{
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) > MAX_DROPPED_NAME) {
        PyErr_SetString(PyExc_ValueError, "configure() takes bytes of at most 32 bytes");
        return -1;
    }
    *length = PyBytes_GET_SIZE(obj);
    memcpy(to, PyBytes_AS_STRING(obj), (size_t)*length);
    return 0;
}

static PyObject *configure(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *names, *name, *value;
    if (!PyArg_ParseTuple(args, "O!SS", &PyTuple_Type, &names, &name, &value))
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    if (count > MAX_DROPPED) {
        PyErr_SetString(PyExc_ValueError, "configure() takes at most 16 names");
        return NULL;
    }
    dropped_count = -1;
    for (Py_ssize_t i = 0; i < count; i++)
        if (copy_short(PyTuple_GET_ITEM(names, i), dropped_names[i], &dropped_lengths[i]) < 0)
            return NULL;
    if (copy_short(name, kept_name, &kept_name_length) < 0
        || copy_short(value, kept_value, &kept_value_length) < 0)
        return NULL;
    dropped_count = (int)count;
    Py_RETURN_NONE;
}

static int is_dropped(const char *name, Py_ssize_t name_len, const char *value,
                      Py_ssize_t value_len)
{
    for (int i = 0; i < dropped_count; i++)
        if (name_is(name, name_len, dropped_names[i], dropped_lengths[i]))
            return !(name_is(name, name_len, kept_name, kept_name_length)
                     && name_is(value, value_len, kept_value, kept_value_length));
    return 0;
}

#define NAME_IS(literal) name_is(name, name_len, literal, (Py_ssize_t)sizeof(literal) - 1)

static PyObject *scan_request(PyObject *module, PyObject *headers)
{
    (void)module;
    if (!PyList_CheckExact(headers) || dropped_count < 0)
        Py_RETURN_NONE;
    Py_ssize_t count = PyList_GET_SIZE(headers);
    /* Room for every header; trimmed at the end. Allocated before anything is looked at,
     * so nothing below can run Python code (a GC pass) while borrowed items are held. */
    PyObject *other_headers = PyList_New(count);
    if (other_headers == NULL)
        return NULL;
    PyObject *method = NULL, *path = NULL, *host = NULL, *version = NULL, *scheme = NULL;
    Py_ssize_t others = 0, cookies = 0;
    long long content_length = -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2)
            goto decline;
        PyObject *name_obj = PyTuple_GET_ITEM(pair, 0);
        PyObject *value_obj = PyTuple_GET_ITEM(pair, 1);
        if (!PyBytes_CheckExact(name_obj) || !PyBytes_CheckExact(value_obj))
            goto decline;
        const char *name = PyBytes_AS_STRING(name_obj);
        Py_ssize_t name_len = PyBytes_GET_SIZE(name_obj);
        const char *value = PyBytes_AS_STRING(value_obj);
        Py_ssize_t value_len = PyBytes_GET_SIZE(value_obj);
        if (name_len > 0 && name[0] == ':') {
            PyObject **slot;
            if (NAME_IS(":method"))
                slot = &method;
            else if (NAME_IS(":path"))
                slot = &path;
            else if (NAME_IS(":host"))
                slot = &host;
            else if (NAME_IS(":version"))
                slot = &version;
            else if (NAME_IS(":scheme"))
                slot = &scheme;
            else
                goto decline;
            if (*slot != NULL)
                goto decline;
            *slot = value_obj;
            if (slot == &path
                && !(value_len > 0 && (value[0] == '/' || (value_len == 1 && value[0] == '*'))))
                goto decline;
            continue;
        }
        if (is_dropped(name, name_len, value, value_len))
            goto decline;
        if (NAME_IS("content-length")) {
            if (content_length >= 0 || value_len < 1 || value_len > 18)
                goto decline;
            long long parsed = 0;
            for (Py_ssize_t k = 0; k < value_len; k++) {
                if (value[k] < '0' || value[k] > '9')
                    goto decline;
                parsed = parsed * 10 + (value[k] - '0');
            }
            content_length = parsed;
        }
        else if (NAME_IS("cookie") && ++cookies > 1)
            goto decline;
        PyList_SET_ITEM(other_headers, others++, Py_NewRef(pair));
    }
    if (method == NULL || path == NULL || host == NULL || version == NULL || scheme == NULL)
        goto decline;
    /* Own the values before allocating again (an allocation may run a GC pass). */
    PyObject *values[4] = {Py_NewRef(method), Py_NewRef(path), Py_NewRef(host),
                           Py_NewRef(version)};
    PyObject *head = NULL, *length = NULL, *result = NULL;
    if (PyList_SetSlice(other_headers, others, count, NULL) < 0  /* drop the spare room */
        || (head = PyTuple_New(5)) == NULL
        || (length = PyLong_FromLongLong(content_length)) == NULL
        || (result = PyTuple_New(2)) == NULL) {
        for (int k = 0; k < 4; k++)
            Py_DECREF(values[k]);
        Py_XDECREF(head);
        Py_XDECREF(length);
        Py_DECREF(other_headers);
        return NULL;
    }
    for (int k = 0; k < 4; k++)
        PyTuple_SET_ITEM(head, k, values[k]);
    PyTuple_SET_ITEM(head, 4, other_headers);
    PyTuple_SET_ITEM(result, 0, head);
    PyTuple_SET_ITEM(result, 1, length);
    return result;

decline:
    Py_DECREF(other_headers);
    Py_RETURN_NONE;
}

/* reply_with_data(version, stream_id, header_block, body, data_flags) -> bytes: a
 * SYN_REPLY (no flags) carrying header_block, then one DATA frame of body with
 * data_flags, in one bytes object: the whole of a small response in one allocation.
 * Same bytes as frames.syn_reply(...) + frames.data_frame_header(...) + body, which the
 * pure-Python build uses (tests/engine/test_fuzz.py holds the two to the same output). */
static void put_u32(unsigned char *p, uint32_t value)
{
    p[0] = (unsigned char)(value >> 24);
    p[1] = (unsigned char)(value >> 16);
    p[2] = (unsigned char)(value >> 8);
    p[3] = (unsigned char)value;
}

#define MAX_FRAME_LENGTH 0xFFFFFF
#define STREAM_MASK 0x7FFFFFFFu

static PyObject *reply_with_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "reply_with_data() takes 5 arguments");
        return NULL;
    }
    long version = PyLong_AsLong(args[0]);
    unsigned long stream_id = PyLong_AsUnsignedLongMask(args[1]);
    if (stream_id == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    long flags = PyLong_AsLong(args[4]);
    if ((version == -1 || flags == -1) && PyErr_Occurred())
        return NULL;
    if (version < 0 || version > 0x7FFF || flags < 0 || flags > 0xFF) {
        PyErr_SetString(PyExc_ValueError, "version or flags out of range");
        return NULL;
    }
    Py_buffer block, body;
    if (PyObject_GetBuffer(args[2], &block, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[3], &body, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&block);
        return NULL;
    }
    PyObject *result = NULL;
    if (4 + block.len > MAX_FRAME_LENGTH || body.len > MAX_FRAME_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "frame payload exceeds 2^24-1 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, 12 + block.len + 8 + body.len);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    put_u32(out, 0x80000000u | ((uint32_t)version << 16) | 2u);  /* SYN_REPLY */
    put_u32(out + 4, (uint32_t)(4 + block.len));
    put_u32(out + 8, (uint32_t)(stream_id & STREAM_MASK));
    memcpy(out + 12, block.buf, (size_t)block.len);
    out += 12 + block.len;
    put_u32(out, (uint32_t)(stream_id & STREAM_MASK));
    put_u32(out + 4, ((uint32_t)flags << 24) | (uint32_t)body.len);
    memcpy(out + 8, body.buf, (size_t)body.len);
done:
    PyBuffer_Release(&block);
    PyBuffer_Release(&body);
    return result;
}

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
    Py_ssize_t max_count = PyLong_AsSsize_t(args[2]);
    if (max_count == -1 && PyErr_Occurred())
        return NULL;
    PyObject *raw = inflate_block(self, args[0], args[1]);
    if (raw == NULL || !PyBytes_CheckExact(raw))
        return raw;  /* an error, or (code, message) */
    PyObject *headers = parse_plain_block((const unsigned char *)PyBytes_AS_STRING(raw),
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
    PyObject *scanned = scan_request(NULL, headers);
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
    if (limit < 0 || limit > PY_SSIZE_T_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "limit out of range");
        return NULL;
    }
    if (self->ended)
        return inflate_failure(3, NULL);
    Py_buffer block;
    if (PyObject_GetBuffer(block_obj, &block, PyBUF_SIMPLE) < 0)
        return NULL;
    if ((size_t)block.len > UINT_MAX) {
        PyBuffer_Release(&block);
        PyErr_SetString(PyExc_OverflowError, "header block too large");
        return NULL;
    }
    Py_ssize_t most = limit + 1;  /* one byte past the limit tells "over" from "exactly" */
    Py_ssize_t size = most < FIRST_OUTPUT ? most : FIRST_OUTPUT;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        PyBuffer_Release(&block);
        return NULL;
    }
    z_stream *strm = &self->strm;
    strm->next_in = (Bytef *)block.buf;
    strm->avail_in = (uInt)block.len;
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
            PyBuffer_Release(&block);
            return NULL;
        }
        size = grown;
    }
    strm->next_in = NULL;
    strm->avail_in = 0;
    PyBuffer_Release(&block);
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

static PyTypeObject InflaterType = {
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

/* Stream(stream_id, priority, send_window, recv_window): the engine's per-stream record
 * (spdy/stream.py's Stream, field for field), made in C because one is made per request
 * and a Python __init__ setting fifteen slots costs more than the rest of its life.
 * Every field is an object slot (T_OBJECT_EX), so attribute reads and writes take the
 * interpreter's fast slot path exactly as for the Python class; no field can refer back
 * to a stream, so there is no GC support to pay for. */
typedef struct {
    PyObject_HEAD
    PyObject *stream_id, *priority, *send_window, *recv_window, *unacked, *remote_closed,
        *local_closed, *reply_sent, *reply_received, *rejected, *associated_id,
        *content_length, *received, *empty_frames, *pushes;
} StreamObject;

#define STREAM_FIELD(name) {#name, T_OBJECT_EX, offsetof(StreamObject, name), 0, NULL}
static PyMemberDef stream_members[] = {
    STREAM_FIELD(stream_id), STREAM_FIELD(priority), STREAM_FIELD(send_window),
    STREAM_FIELD(recv_window), STREAM_FIELD(unacked), STREAM_FIELD(remote_closed),
    STREAM_FIELD(local_closed), STREAM_FIELD(reply_sent), STREAM_FIELD(reply_received),
    STREAM_FIELD(rejected), STREAM_FIELD(associated_id), STREAM_FIELD(content_length),
    STREAM_FIELD(received), STREAM_FIELD(empty_frames), STREAM_FIELD(pushes),
    {NULL, 0, 0, 0, NULL},
};

static PyObject *zero;

static int stream_init(StreamObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *stream_id, *priority, *send_window, *recv_window;
    static char *names[] = {"stream_id", "priority", "send_window", "recv_window", NULL};
    if (!PyTuple_CheckExact(args) || PyTuple_GET_SIZE(args) != 4 || kwds != NULL) {
        if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO", names, &stream_id, &priority,
                                         &send_window, &recv_window))
            return -1;
    }
    else {
        stream_id = PyTuple_GET_ITEM(args, 0);
        priority = PyTuple_GET_ITEM(args, 1);
        send_window = PyTuple_GET_ITEM(args, 2);
        recv_window = PyTuple_GET_ITEM(args, 3);
    }
    Py_XSETREF(self->stream_id, Py_NewRef(stream_id));
    Py_XSETREF(self->priority, Py_NewRef(priority));
    Py_XSETREF(self->send_window, Py_NewRef(send_window));
    Py_XSETREF(self->recv_window, Py_NewRef(recv_window));
    Py_XSETREF(self->unacked, Py_NewRef(zero));
    Py_XSETREF(self->remote_closed, Py_NewRef(Py_False));
    Py_XSETREF(self->local_closed, Py_NewRef(Py_False));
    Py_XSETREF(self->reply_sent, Py_NewRef(Py_False));
    Py_XSETREF(self->reply_received, Py_NewRef(Py_False));
    Py_XSETREF(self->rejected, Py_NewRef(Py_False));
    Py_XSETREF(self->associated_id, Py_NewRef(zero));
    Py_XSETREF(self->content_length, Py_NewRef(Py_None));
    Py_XSETREF(self->received, Py_NewRef(zero));
    Py_XSETREF(self->empty_frames, Py_NewRef(zero));
    Py_XSETREF(self->pushes, Py_NewRef(Py_None));
    return 0;
}

static void stream_dealloc(StreamObject *self)
{
    Py_XDECREF(self->stream_id);
    Py_XDECREF(self->priority);
    Py_XDECREF(self->send_window);
    Py_XDECREF(self->recv_window);
    Py_XDECREF(self->unacked);
    Py_XDECREF(self->remote_closed);
    Py_XDECREF(self->local_closed);
    Py_XDECREF(self->reply_sent);
    Py_XDECREF(self->reply_received);
    Py_XDECREF(self->rejected);
    Py_XDECREF(self->associated_id);
    Py_XDECREF(self->content_length);
    Py_XDECREF(self->received);
    Py_XDECREF(self->empty_frames);
    Py_XDECREF(self->pushes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spdyasgi.spdy._nvfast.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Per-stream state (see spdy/stream.py's Stream, the same fields).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)stream_init,
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_members = stream_members,
};

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(dropped_names, kept_name, kept_value): the request headers the engine "
     "drops, save the one kept pair (see spdy/constants.py)."},
    {"parse_plain", parse_plain, METH_VARARGS,
     "parse_plain(raw, max_count) -> list of (name, value) pairs, or None when the block "
     "is not plain (see headers.parse_nv_block)."},
    {"scan_request", scan_request, METH_O,
     "scan_request(headers) -> ((method, path, host, version, other_headers), "
     "content_length) for a plainly valid request, else None (see receiver._on_syn_stream)."},
    {"reply_with_data", (PyCFunction)(void (*)(void))reply_with_data, METH_FASTCALL,
     "reply_with_data(version, stream_id, header_block, body, data_flags) -> SYN_REPLY + "
     "DATA frame bytes (see frames.reply_with_data)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_nvfast", "Fast paths of the SPDY/3 NV block parser and request check.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nvfast(void)
{
    for (int c = 0x21; c <= 0x7e; c++)
        name_ok[c] = !(c == ':' || (c >= 'A' && c <= 'Z'));
    for (size_t i = 0; i < COMMON_COUNT; i++) {
        if (common_objects[i] == NULL) {  /* once per process, even if re-imported */
            common_lengths[i] = (Py_ssize_t)strlen(common_strings[i]);
            common_objects[i] = PyBytes_FromStringAndSize(common_strings[i],
                                                          common_lengths[i]);
            if (common_objects[i] == NULL)
                return NULL;
            if (common_lengths[i] > 0 && common_lengths[i] <= COMMON_MAX_LENGTH) {
                Py_ssize_t length = common_lengths[i];
                common_by_length[length][common_per_length[length]++] = (unsigned char)i;
            }
        }
    }
    if (PyType_Ready(&InflaterType) < 0 || PyType_Ready(&StreamType) < 0)
        return NULL;
    if (zero == NULL && (zero = PyLong_FromLong(0)) == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Inflater", (PyObject *)&InflaterType) < 0
        || PyModule_AddObjectRef(module, "Stream", (PyObject *)&StreamType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
