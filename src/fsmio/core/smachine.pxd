cimport cython

# Cython declarations augmenting smachine.py (the reference): the compiled build makes
# these classes extension types with typed fields (docs/compiled.md).  Only fields named
# here change; every other attribute stays an ordinary Python one.

cdef class DispatchContext:
    cdef public int depth

cdef class CompiledFSM:
    cdef public object fsm
    cdef public tuple event_list
    cdef public dict event_attrs
    cdef public tuple output_events
    cdef public frozenset output_set
    cdef public tuple state_list
    cdef public object initial_state
    cdef public tuple rows
    cdef public tuple input_events
    cdef public frozenset input_set
    cdef public dict transitions
    cdef public dict tables
    cdef public dict table_state

cdef class MachineCore:
    cdef public CompiledFSM _fsm
    cdef public dict _table
    cdef public DispatchContext _ctx

@cython.locals(table=dict, ctx=DispatchContext, depth=int, row=tuple)
cpdef object inject_event(MachineCore self, object event)
