"""The GAplic: runs a tree of gobjs on one asyncio (or uvloop) event loop."""

from .gaplic import Callback, GAplic, GAplicThreadWorker, TimerHandle, setup_gaplic_thread

__all__ = ["Callback", "GAplic", "GAplicThreadWorker", "TimerHandle", "setup_gaplic_thread"]
