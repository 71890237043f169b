"""The GAplic: runs a tree of gobjs on one asyncio (or uvloop) event loop."""

from .gaplic import (
    Callback,
    GAplic,
    GAplicThreadWorker,
    TimerHandle,
    gaplic_factory,
    get_gaplic_by_thread_ident,
    setup_gaplic_thread,
)
from .workers import (
    GAplicProcessWorker,
    get_global_subprocesses,
    get_global_threads,
    setup_gaplic_process,
    shutdown,
)

__all__ = [
    "Callback",
    "GAplic",
    "GAplicProcessWorker",
    "GAplicThreadWorker",
    "TimerHandle",
    "gaplic_factory",
    "get_gaplic_by_thread_ident",
    "get_global_subprocesses",
    "get_global_threads",
    "setup_gaplic_process",
    "setup_gaplic_thread",
    "shutdown",
]
