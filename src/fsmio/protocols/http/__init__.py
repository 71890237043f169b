"""HTTP/1.1: ``GHttpServer`` and its per-connection ``GHttpCliSrv``, on httptools."""

from fsmio.protocols.http.c_http_clisrv import GHttpCliSrv, HttpSettings
from fsmio.protocols.http.c_http_server import GHttpServer
from fsmio.protocols.http.parser import HttpError
from fsmio.protocols.http.request import HttpRequest
from fsmio.protocols.http.response import (
    HttpErrorResponse,
    HttpResponse,
    HttpSimpleOkResponse,
    ResponseInterrupt,
)

__all__ = [
    "GHttpCliSrv",
    "GHttpServer",
    "HttpError",
    "HttpErrorResponse",
    "HttpRequest",
    "HttpResponse",
    "HttpSettings",
    "HttpSimpleOkResponse",
    "ResponseInterrupt",
]
