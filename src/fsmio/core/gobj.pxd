# Cython declarations augmenting gobj.py (the reference; docs/compiled.md).
from fsmio.core.smachine cimport MachineCore, inject_event
