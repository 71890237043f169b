"""The servers of the HTTP benchmark (``python -m benchmarks.http_run``), one module each.

Every module is a program: ``python -m benchmarks.http_servers.<name> --host H --port 0``
prints ``READY <host> <port>`` once it listens and stops on SIGTERM/SIGINT.  Each serves
the same two resources (``apps.py``): ``/`` answers the 13-byte ``Hello, World!`` and
``/64k`` answers 65 536 bytes, both ``200`` with ``Content-Type`` and ``Content-Length``.
"""
