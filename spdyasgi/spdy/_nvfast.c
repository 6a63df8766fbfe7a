/* spdyasgi.spdy._nvfast: the optional C accelerator of the SPDY engine (setup.py).
 *
 * It takes the common case of the per-request work and nothing else; every error is
 * decided by the pure-Python code (the C functions give the plain answer or decline),
 * and tests/engine/test_fuzz.py holds each one to its Python twin. The parts:
 *   _nv_headers.c   parse_plain, scan_request, configure: NV blocks and requests
 *   _nv_inflater.c  Inflater: the header-block zlib context (inflate, inflate_request)
 *   _nv_records.c   reply_with_data (SYN_REPLY + DATA) and Stream (the per-stream record)
 *   _nv_accept.c    RequestAcceptor: a server's plain SYN_STREAMs to requests
 * SPDYASGI_NO_EXTENSION=1 keeps the engine off all of it (spdy/accel.py).
 */
#include "_nvfast.h"

static PyMethodDef methods[] = {
    {"configure", nv_configure, METH_VARARGS,
     "configure(dropped_names, kept_name, kept_value): the request headers the engine "
     "drops, save the one kept pair (see spdy/constants.py)."},
    {"parse_plain", nv_parse_plain, METH_VARARGS,
     "parse_plain(raw, max_count) -> list of (name, value) pairs, or None when the block "
     "is not plain (see headers.parse_nv_block)."},
    {"scan_request", nv_scan_request, METH_O,
     "scan_request(headers) -> ((method, path, host, version, other_headers), "
     "content_length) for a plainly valid request, else None (see receiver._on_syn_stream)."},
    {"reply_with_data", (PyCFunction)(void (*)(void))nv_reply_with_data, METH_FASTCALL,
     "reply_with_data(version, stream_id, header_block, body, data_flags) -> SYN_REPLY + "
     "DATA frame bytes (see frames.reply_with_data)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_nvfast",
    "Fast paths of the SPDY engine's per-request work (see spdyasgi/spdy/accel.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nvfast(void)
{
    if (nv_headers_init() < 0 || nv_records_init() < 0 || nv_accept_init() < 0)
        return NULL;
    if (PyType_Ready(&NvInflaterType) < 0 || PyType_Ready(&NvStreamType) < 0
        || PyType_Ready(&NvAcceptorType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Inflater", (PyObject *)&NvInflaterType) < 0
        || PyModule_AddObjectRef(module, "Stream", (PyObject *)&NvStreamType) < 0
        || PyModule_AddObjectRef(module, "RequestAcceptor", (PyObject *)&NvAcceptorType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
