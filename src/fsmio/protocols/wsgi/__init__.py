"""WSGI (PEP 3333) hosting: ``GWsgiServer`` and ``URLMap``."""

from .c_wsgi_server import GWsgiServer
from .gateway import ClientDisconnected, FileWrapper, build_environ
from .urlmap import URLMap, parse_path_expression, urlmap_factory

__all__ = [
    "ClientDisconnected",
    "FileWrapper",
    "GWsgiServer",
    "URLMap",
    "build_environ",
    "parse_path_expression",
    "urlmap_factory",
]
