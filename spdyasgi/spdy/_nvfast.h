/* Shared declarations of the _nvfast extension's source files (see _nvfast.c). */
#ifndef SPDYASGI_NVFAST_H
#define SPDYASGI_NVFAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* _nv_headers.c: NV blocks and the request scan */
int nv_headers_init(void);
PyObject *nv_parse_plain_block(const unsigned char *raw, Py_ssize_t total,
                               Py_ssize_t max_count);
PyObject *nv_parse_plain(PyObject *module, PyObject *args);
PyObject *nv_configure(PyObject *module, PyObject *args);
PyObject *nv_scan_request(PyObject *module, PyObject *headers);

/* _nv_inflater.c: the header-block inflater */
extern PyTypeObject NvInflaterType;
PyObject *nv_inflate_request(PyObject *inflater, const unsigned char *buf, Py_ssize_t len,
                             Py_ssize_t limit, Py_ssize_t max_count);

/* _nv_records.c: reply framing and the per-stream record */
int nv_records_init(void);
PyObject *nv_reply_with_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern PyTypeObject NvStreamType;

/* _nv_accept.c: the server's SYN_STREAM fast path */
int nv_accept_init(void);
extern PyTypeObject NvAcceptorType;

#endif
