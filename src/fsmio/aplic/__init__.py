"""The GAplic: runs a tree of gobjs on one asyncio (or uvloop) event loop."""

from .gaplic import (
    Callback,
    GAplic,
    GAplicThreadWorker,
    TimerHandle,
    gaplic_factory,
    get_gaplic_by_thread_ident,
    setup_gaplic_process,
    setup_gaplic_thread,
)

__all__ = [
    "Callback",
    "GAplic",
    "GAplicThreadWorker",
    "TimerHandle",
    "gaplic_factory",
    "get_gaplic_by_thread_ident",
    "setup_gaplic_process",
    "setup_gaplic_thread",
]
