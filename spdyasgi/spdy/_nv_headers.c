/* NV blocks and requests: the common cases of headers.parse_nv_block and of the engine's
 * request check (receiver._check_request + request_heads.request_head), in C.
 *
 * parse_plain(raw, max_count) cuts a decompressed NV block into a list of (name, value)
 * pairs when the block is well formed and plain: every length inside the block, no more
 * than max_count pairs, names made of valid lowercase token characters (optionally after
 * one leading ':'), no duplicate names, and no NUL, CR or LF in any value. Anything else
 * (errors, multi-values, huge blocks) returns None and the pure-Python parser in
 * headers.py, which owns every error message, handles the block. So this decides
 * nothing that parser does not, it only makes the usual case cheap.
 */
#include "_nvfast.h"
#include <string.h>

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
PyObject *nv_parse_plain_block(const unsigned char *raw, Py_ssize_t total,
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

PyObject *nv_parse_plain(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer view;
    Py_ssize_t max_count;
    if (!PyArg_ParseTuple(args, "y*n", &view, &max_count))
        return NULL;
    PyObject *result = nv_parse_plain_block(view.buf, view.len, max_count);
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

PyObject *nv_configure(PyObject *module, PyObject *args)
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

PyObject *nv_scan_request(PyObject *module, PyObject *headers)
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

int nv_headers_init(void)
{
    for (int c = 0x21; c <= 0x7e; c++)
        name_ok[c] = !(c == ':' || (c >= 'A' && c <= 'Z'));
    for (size_t i = 0; i < COMMON_COUNT; i++) {
        if (common_objects[i] == NULL) {  /* once per process, even if re-imported */
            common_lengths[i] = (Py_ssize_t)strlen(common_strings[i]);
            common_objects[i] = PyBytes_FromStringAndSize(common_strings[i],
                                                          common_lengths[i]);
            if (common_objects[i] == NULL)
                return -1;
            if (common_lengths[i] > 0 && common_lengths[i] <= COMMON_MAX_LENGTH) {
                Py_ssize_t length = common_lengths[i];
                common_by_length[length][common_per_length[length]++] = (unsigned char)i;
            }
        }
    }
    return 0;
}
