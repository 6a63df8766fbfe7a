/* The server's request acceptor: SYN_STREAM frames to RequestReceived events, in C.
 *
 * RequestAcceptor(inflater, max_block, max_count, syn_word, streams, batch, stream_type,
 *                 event_type, config)
 * accept(engine, buf, pos, end, max_frame, events) -> int, or a 5-tuple
 *
 * A sequential client costs the server one read per request, and the Python path for
 * that read (the frame loop, the SYN_STREAM checks, the stream record, the event) was
 * the largest piece of per-request work left in Python. This does that path for the
 * plain case only, exactly as receiver.py's `_on_syn_stream` and `_open_request` do it,
 * and declines everything else before anything is changed:
 *
 *   - from `pos`, each complete SYN_STREAM frame of our version (first word `syn_word`)
 *     with a length from 10 to `max_frame`, an odd stream id above the highest one seen,
 *     no UNIDIRECTIONAL flag, no associated stream, a free concurrent-stream slot; and
 *     only while the session has sent no GOAWAY, runs no compat mode and validates
 *     requests. The first frame that is anything else ends the call: its position is
 *     returned and Python takes that frame (and decides every error).
 *   - the frame's header block goes through `inflate_request`. A plain block whose
 *     request scan passed (and that is not a FIN request with a body length) opens the
 *     stream: the record (`stream_type`) in `streams`, the id in `batch`, the event
 *     (`event_type`) appended to `events`, the engine's highest_remote_id,
 *     last_good_stream_id and _remote_open updated.
 *   - a block that inflated but is not plain, or failed, was consumed from the zlib
 *     stream and cannot be declined any more: the call ends with (position after the
 *     frame, flags, stream id, priority, what inflate_request gave), which the engine's
 *     `_finish_request` completes in Python.
 *
 * The engine's counters are read once per call and written back before it returns.
 * tests/engine/test_fuzz.py holds this path and the pure-Python one to the same events
 * and frames. */
#include "_nvfast.h"

#define FIN 0x01
#define UNIDIRECTIONAL 0x02
#define STREAM_MASK 0x7FFFFFFFu

typedef struct {
    PyObject_HEAD
    PyObject *inflater;
    Py_ssize_t max_block;
    Py_ssize_t max_count;
    uint32_t syn_word;
    PyObject *streams;     /* dict: stream id -> record */
    PyObject *batch;       /* set: ids opened in the current read */
    PyObject *stream_type;
    PyObject *event_type;
    PyObject *config;      /* ConnectionConfig: max_concurrent_streams, validate_requests */
} AcceptorObject;

static PyObject *s_highest, *s_last_good, *s_remote_open, *s_goaway_sent, *s_compat,
    *s_remote_window, *s_local_window, *s_max_streams, *s_validate, *s_remote_closed,
    *s_content_length;

static int intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

int nv_accept_init(void)
{
    if (intern(&s_highest, "highest_remote_id") < 0
        || intern(&s_last_good, "last_good_stream_id") < 0
        || intern(&s_remote_open, "_remote_open") < 0
        || intern(&s_goaway_sent, "goaway_sent") < 0
        || intern(&s_compat, "_compat") < 0
        || intern(&s_remote_window, "remote_initial_window") < 0
        || intern(&s_local_window, "local_initial_window") < 0
        || intern(&s_max_streams, "max_concurrent_streams") < 0
        || intern(&s_validate, "validate_requests") < 0
        || intern(&s_remote_closed, "remote_closed") < 0
        || intern(&s_content_length, "content_length") < 0)
        return -1;
    return 0;
}

static int acceptor_init(AcceptorObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *inflater, *streams, *batch, *stream_type, *event_type, *config;
    Py_ssize_t max_block, max_count;
    unsigned long syn_word;
    static char *names[] = {"inflater", "max_block", "max_count", "syn_word", "streams",
                            "batch", "stream_type", "event_type", "config", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!nnkO!O!OOO", names, &NvInflaterType,
                                     &inflater, &max_block, &max_count, &syn_word,
                                     &PyDict_Type, &streams, &PySet_Type, &batch,
                                     &stream_type, &event_type, &config))
        return -1;
    Py_XSETREF(self->inflater, Py_NewRef(inflater));
    Py_XSETREF(self->streams, Py_NewRef(streams));
    Py_XSETREF(self->batch, Py_NewRef(batch));
    Py_XSETREF(self->stream_type, Py_NewRef(stream_type));
    Py_XSETREF(self->event_type, Py_NewRef(event_type));
    Py_XSETREF(self->config, Py_NewRef(config));
    self->max_block = max_block;
    self->max_count = max_count;
    self->syn_word = (uint32_t)syn_word;
    return 0;
}

static int acceptor_traverse(AcceptorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->inflater);
    Py_VISIT(self->streams);
    Py_VISIT(self->batch);
    Py_VISIT(self->stream_type);
    Py_VISIT(self->event_type);
    Py_VISIT(self->config);
    return 0;
}

static int acceptor_clear(AcceptorObject *self)
{
    Py_CLEAR(self->inflater);
    Py_CLEAR(self->streams);
    Py_CLEAR(self->batch);
    Py_CLEAR(self->stream_type);
    Py_CLEAR(self->event_type);
    Py_CLEAR(self->config);
    return 0;
}

static void acceptor_dealloc(AcceptorObject *self)
{
    PyObject_GC_UnTrack(self);
    acceptor_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An attribute of `obj` as a C long (-1 with an exception set on failure). */
static long long_attr(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        return -1;
    long result = PyLong_AsLong(value);
    Py_DECREF(value);
    return result;
}

/* The truth of an attribute of `obj` (-1 with an exception set on failure). */
static int truth_attr(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        return -1;
    int result = PyObject_IsTrue(value);
    Py_DECREF(value);
    return result;
}

static int set_long_attr(PyObject *obj, PyObject *name, long value)
{
    PyObject *number = PyLong_FromLong(value);
    if (number == NULL)
        return -1;
    int result = PyObject_SetAttr(obj, name, number);
    Py_DECREF(number);
    return result;
}

/* Open one plain request: record, batch id, event. 0, or -1 with an exception set. */
static int open_request(AcceptorObject *self, PyObject *events, PyObject *remote_window,
                        PyObject *local_window, long stream_id, long priority, int end_stream,
                        PyObject *headers, PyObject *head, long content_length)
{
    int status = -1;
    PyObject *id_obj = PyLong_FromLong(stream_id);
    PyObject *priority_obj = PyLong_FromLong(priority);
    PyObject *stream = NULL, *event = NULL;
    if (id_obj == NULL || priority_obj == NULL)
        goto done;
    PyObject *record_args[4] = {id_obj, priority_obj, remote_window, local_window};
    stream = PyObject_Vectorcall(self->stream_type, record_args, 4, NULL);
    if (stream == NULL)
        goto done;
    if (PyObject_SetAttr(stream, s_remote_closed, end_stream ? Py_True : Py_False) < 0)
        goto done;
    if (content_length >= 0) {
        PyObject *length = PyLong_FromLong(content_length);
        if (length == NULL)
            goto done;
        int failed = PyObject_SetAttr(stream, s_content_length, length);
        Py_DECREF(length);
        if (failed < 0)
            goto done;
    }
    if (PyDict_SetItem(self->streams, id_obj, stream) < 0 || PySet_Add(self->batch, id_obj) < 0)
        goto done;
    PyObject *event_args[5] = {id_obj, headers, priority_obj,
                               end_stream ? Py_True : Py_False, head};
    event = PyObject_Vectorcall(self->event_type, event_args, 5, NULL);
    if (event == NULL || PyList_Append(events, event) < 0)
        goto done;
    status = 0;
done:
    Py_XDECREF(id_obj);
    Py_XDECREF(priority_obj);
    Py_XDECREF(stream);
    Py_XDECREF(event);
    return status;
}

/* The plain answer of inflate_request, unpacked: 1 when `out` is (headers, (head,
 * content_length)) with a list and a 2-tuple, else 0 (not plain, scan declined, failed). */
static int plain_request(PyObject *out, PyObject **headers, PyObject **head, long *length)
{
    if (!PyTuple_CheckExact(out) || PyTuple_GET_SIZE(out) != 2)
        return 0;
    PyObject *first = PyTuple_GET_ITEM(out, 0), *scanned = PyTuple_GET_ITEM(out, 1);
    if (!PyList_CheckExact(first) || !PyTuple_CheckExact(scanned)
        || PyTuple_GET_SIZE(scanned) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(scanned, 1)))
        return 0;
    long content_length = PyLong_AsLong(PyTuple_GET_ITEM(scanned, 1));
    if (content_length == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *headers = first;
    *head = PyTuple_GET_ITEM(scanned, 0);
    *length = content_length;
    return 1;
}

static PyObject *acceptor_accept(AcceptorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "accept(engine, buf, pos, end, max_frame, events)");
        return NULL;
    }
    PyObject *engine = args[0], *events = args[5];
    Py_ssize_t pos = PyLong_AsSsize_t(args[2]);
    Py_ssize_t end = PyLong_AsSsize_t(args[3]);
    long max_frame = PyLong_AsLong(args[4]);
    if ((pos == -1 || end == -1 || max_frame == -1) && PyErr_Occurred())
        return NULL;
    if (!PyList_CheckExact(events)) {
        PyErr_SetString(PyExc_TypeError, "events must be a list");
        return NULL;
    }
    /* The session's mode: anything unusual is Python's. */
    int goaway = truth_attr(engine, s_goaway_sent);
    int compat = goaway != 0 ? goaway : truth_attr(engine, s_compat);
    int validate = compat != 0 ? 0 : truth_attr(self->config, s_validate);
    if (goaway < 0 || compat < 0 || validate < 0)
        return NULL;
    if (goaway || compat || !validate)
        return PyLong_FromSsize_t(pos);
    long highest = long_attr(engine, s_highest);
    long remote_open = long_attr(engine, s_remote_open);
    long max_open = long_attr(self->config, s_max_streams);
    if ((highest == -1 || remote_open == -1 || max_open == -1) && PyErr_Occurred())
        return NULL;
    PyObject *remote_window = PyObject_GetAttr(engine, s_remote_window);
    PyObject *local_window = remote_window ? PyObject_GetAttr(engine, s_local_window) : NULL;
    if (local_window == NULL) {
        Py_XDECREF(remote_window);
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(remote_window);
        Py_DECREF(local_window);
        return NULL;
    }
    if (end > view.len || pos < 0 || pos > end)
        end = pos;  /* nothing sensible to read: decline */
    const unsigned char *buf = (const unsigned char *)view.buf;
    long opened = 0, last_id = 0;
    PyObject *result = NULL, *out = NULL;
    int failed = 0;
    while (end - pos >= 8) {
        const unsigned char *frame = buf + pos;
        if (get_u32(frame) != self->syn_word)
            break;
        uint32_t flags_length = get_u32(frame + 4);
        long length = (long)(flags_length & 0xFFFFFF);
        int flags = (int)(flags_length >> 24);
        if (length < 10 || length > max_frame || end - pos - 8 < length)
            break;
        long stream_id = (long)(get_u32(frame + 8) & STREAM_MASK);
        uint32_t assoc = get_u32(frame + 12) & STREAM_MASK;
        long priority = frame[16] >> 5;
        if (!(stream_id & 1) || stream_id <= highest || (flags & UNIDIRECTIONAL) || assoc
            || remote_open >= max_open)
            break;
        out = nv_inflate_request(self->inflater, frame + 18, length - 10, self->max_block,
                                 self->max_count);
        if (out == NULL) {
            failed = 1;
            break;
        }
        Py_ssize_t next = pos + 8 + length;
        int end_stream = (flags & FIN) != 0;
        PyObject *headers, *head;
        long content_length;
        if (!plain_request(out, &headers, &head, &content_length)
            || (end_stream && content_length > 0)) {
            /* Inflated, so no longer Python's to decline: it finishes this one. */
            result = Py_BuildValue("(niilO)", next, flags, (int)stream_id, priority, out);
            Py_CLEAR(out);
            if (result == NULL)
                failed = 1;
            break;
        }
        if (open_request(self, events, remote_window, local_window, stream_id, priority,
                         end_stream, headers, head, content_length) < 0) {
            Py_CLEAR(out);
            failed = 1;
            break;
        }
        Py_CLEAR(out);
        highest = last_id = stream_id;
        remote_open += 1;
        opened += 1;
        pos = next;
    }
    PyBuffer_Release(&view);
    Py_DECREF(remote_window);
    Py_DECREF(local_window);
    if (opened) {
        /* Written back even after a failure: the streams opened so far are real. */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        int unsaved = set_long_attr(engine, s_highest, highest) < 0
            || set_long_attr(engine, s_last_good, last_id) < 0
            || set_long_attr(engine, s_remote_open, remote_open) < 0;
        if (type != NULL) {
            if (unsaved)
                PyErr_Clear();
            PyErr_Restore(type, value, traceback);
        } else if (unsaved) {
            failed = 1;
        }
    }
    if (failed) {
        Py_XDECREF(result);
        return NULL;
    }
    return result != NULL ? result : PyLong_FromSsize_t(pos);
}

static PyMethodDef acceptor_methods[] = {
    {"accept", (PyCFunction)(void (*)(void))acceptor_accept, METH_FASTCALL,
     "accept(engine, buf, pos, end, max_frame, events) -> position after the requests "
     "opened, or (position, flags, stream id, priority, inflated) for Python to finish."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject NvAcceptorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spdyasgi.spdy._nvfast.RequestAcceptor",
    .tp_basicsize = sizeof(AcceptorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Opens a server's plain client requests from SYN_STREAM frames (see the file).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)acceptor_init,
    .tp_traverse = (traverseproc)acceptor_traverse,
    .tp_clear = (inquiry)acceptor_clear,
    .tp_dealloc = (destructor)acceptor_dealloc,
    .tp_methods = acceptor_methods,
};
