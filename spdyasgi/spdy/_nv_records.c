/* Frames and records the engine makes once per request: a reply's SYN_REPLY + DATA, and
 * the per-stream record. */
#include "_nvfast.h"
#include <string.h>
#include <structmember.h>

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

PyObject *nv_reply_with_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
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

PyTypeObject NvStreamType = {
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

int nv_records_init(void)
{
    if (zero == NULL && (zero = PyLong_FromLong(0)) == NULL)
        return -1;
    return 0;
}
