# Cython declarations augmenting c_sock.py (the reference; docs/compiled.md): GSockCore,
# the fields of the per-message path, becomes an extension type with C struct members.
cimport cython

from fsmio.core.smachine cimport MachineCore


cdef class GSockCore(MachineCore):
    cdef public object _clock
    cdef public Py_ssize_t _direct_max
    cdef public object _queue
    cdef public bint _read_paused_by_app
    cdef public object _rx_held
    cdef public object _transport
    cdef public object last_activity
    cdef public long long rxed_bytes
    cdef public long long rxed_msgs
    cdef public long long txed_bytes
    cdef public long long txed_msgs
    cdef public bint trace_dump


@cython.locals(n=Py_ssize_t)
cpdef object ac_send_data(GSockCore self, object event)
