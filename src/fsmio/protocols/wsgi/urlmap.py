"""``URLMap``: several WSGI applications under one server, by URL prefix (and host).

A port of ginsfsm's ``protocols/wsgi/common/urlmap.py`` (itself Paste's ``urlmap``, (c) 2005
Ian Bicking and contributors, MIT), kept with its semantics:

* keys are URL prefixes (``'/blog'``), optionally with a host and port
  (``'http://example.com:8080/blog'`` or the tuple ``('example.com', '/blog')``); trailing
  and repeated slashes are normalised away;
* a request goes to the application of the **longest** prefix that equals ``PATH_INFO`` or
  starts ``PATH_INFO`` followed by ``/``; entries with a host only match that host (or
  ``host:port``), and are tried before those without one;
* the chosen application sees the prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME``;
* no match: ``not_found_app`` (default: a plain ``404 Not Found``; the original used
  Paste's ``HTTPNotFound`` and listed the mounted applications, which tells strangers
  more than they need).

``parse_path_expression('domain example.com port 8080 /blog')`` gives a key URLMap
takes: ``'http://example.com:8080/blog'`` (as Paste's, for ini files).
``urlmap_factory(loader, global_conf, **local_conf)`` is the PasteDeploy composite of the
original (``/ = home``, ``/blog = blog``...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

__all__ = ["URLMap", "parse_path_expression", "urlmap_factory"]

WsgiApp = Callable[..., Iterable[bytes]]
Key = tuple[str | None, str]

_NORM_URL = re.compile("//+")
_DOMAIN_URL = re.compile("^(http|https)://")


def parse_path_expression(path: str) -> str:
    """Parse ``'domain foobar.com port 20 /'`` or just ``'/foobar'`` into a URLMap key;
    ``ValueError`` for a malformed expression."""
    parts = path.split()
    domain = port = url = None
    while parts:
        word = parts.pop(0)
        if word == "domain":
            if not parts:
                raise ValueError("'domain' must be followed with a domain name")
            if domain:
                raise ValueError("'domain' given twice")
            domain = parts.pop(0)
        elif word == "port":
            if not parts:
                raise ValueError("'port' must be followed with a port number")
            if port:
                raise ValueError("'port' given twice")
            port = parts.pop(0)
        else:
            if url:
                raise ValueError(f"more than one path given (have {url!r}, got {word!r})")
            url = word
    out = ""
    if domain:
        out = f"http://{domain}"
    if port:
        if not domain:
            raise ValueError("If you give a port, you must also give a domain")
        out += ":" + port
    if url:
        if out:
            out += "/"
        out += url
    return out


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = b"404 Not Found\n\nThe resource could not be found.\n"
    start_response(
        "404 Not Found",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


class URLMap(MutableMapping[Any, WsgiApp]):
    """A WSGI application dispatching to others by URL prefix (see the module docs)."""

    def __init__(self, not_found_app: WsgiApp | None = None) -> None:
        self.applications: list[tuple[Key, WsgiApp]] = []
        self.not_found_application: WsgiApp = not_found_app or self.not_found_app

    def not_found_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The default for a path no application is mounted on: ``404 Not Found``."""
        return _not_found(environ, start_response)

    def normalize_url(self, url: Any, trim: bool = True) -> Key:
        """``(domain or None, path)`` of a key (a URL string or a ``(domain, url)`` tuple)."""
        if isinstance(url, (list, tuple)):
            given = url[0]
            return (given.lower() if given else None), self.normalize_url(url[1], trim)[1]
        if not isinstance(url, str):
            raise TypeError(f"URLMap keys are URL strings or (domain, url) tuples, not {url!r}")
        match = _DOMAIN_URL.search(url)
        if not (not url or url.startswith("/") or match):
            raise ValueError(f"URL fragments must start with / or http:// (you gave {url!r})")
        domain: str | None = None
        if match:
            url = url[match.end() :]
            if "/" in url:
                domain, url = url.split("/", 1)
                url = "/" + url
            else:
                domain, url = url, ""
            domain = domain.lower()
        url = _NORM_URL.sub("/", url)
        if trim:
            url = url.rstrip("/")
        return domain, url

    def sort_apps(self) -> None:
        """Keep the longest URLs first; entries with a domain before those without."""

        def key(entry: tuple[Key, WsgiApp]) -> tuple[int, str, int]:
            (domain, url), _ = entry
            return (1, "", -len(url)) if not domain else (0, domain, -len(url))

        self.applications.sort(key=key)

    def __setitem__(self, url: Any, app: WsgiApp | None) -> None:
        if app is None:
            self.pop(url, None)
            return
        if not callable(app):
            raise TypeError(f"URLMap[{url!r}]: the application must be callable, not {app!r}")
        key = self.normalize_url(url)
        self.applications = [(k, a) for k, a in self.applications if k != key]
        self.applications.append((key, app))
        self.sort_apps()

    def __getitem__(self, url: Any) -> WsgiApp:
        key = self.normalize_url(url)
        for app_key, app in self.applications:
            if app_key == key:
                return app
        raise KeyError(
            f"No application with the url {key[1]!r} (domain: {key[0] or '*'!r}; "
            f"existing: {[k for k, _ in self.applications]})"
        )

    def __delitem__(self, url: Any) -> None:
        key = self.normalize_url(url)
        for index, (app_key, _) in enumerate(self.applications):
            if app_key == key:
                del self.applications[index]
                return
        raise KeyError(f"No application with the url {key!r}")

    def __iter__(self) -> Iterator[Key]:
        return iter([k for k, _ in self.applications])

    def __len__(self) -> int:
        return len(self.applications)

    def __contains__(self, url: object) -> bool:
        try:
            key = self.normalize_url(url)
        except (TypeError, ValueError):
            return False
        return any(k == key for k, _ in self.applications)

    def __repr__(self) -> str:
        return f"URLMap({dict(self.applications)!r})"

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        host, port = _host_and_port(environ)
        path_info = self.normalize_url(environ.get("PATH_INFO") or "", False)[1]
        for (domain, app_url), app in self.applications:
            if domain and domain != host and domain != f"{host}:{port}":
                continue
            if path_info == app_url or path_info.startswith(app_url + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + app_url
                environ["PATH_INFO"] = path_info[len(app_url) :]
                return app(environ, start_response)
        environ["paste.urlmap_object"] = self
        return self.not_found_application(environ, start_response)


def _host_and_port(environ: dict[str, Any]) -> tuple[str, str]:
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").lower()
    if host.startswith("["):  # an IPv6 literal: [::1]:8000
        bracket = host.find("]")
        if bracket > 0:
            rest = host[bracket + 1 :]
            if rest.startswith(":"):
                return host[: bracket + 1], rest[1:]
            host = host[: bracket + 1]
    elif ":" in host:
        name, port = host.split(":", 1)
        return name, port
    return host, "80" if environ.get("wsgi.url_scheme", "http") == "http" else "443"


def urlmap_factory(loader: Any, global_conf: dict[str, Any], **local_conf: Any) -> URLMap:
    """PasteDeploy composite: ``[composite:x] use = call:...:urlmap_factory`` with one
    ``<path expression> = <app name>`` line per application (and ``not_found_app``)."""
    not_found_name = local_conf.pop("not_found_app", None) or global_conf.get("not_found_app")
    not_found = loader.get_app(not_found_name, global_conf=global_conf) if not_found_name else None
    urlmap = URLMap(not_found_app=not_found)
    for path, app_name in local_conf.items():
        urlmap[parse_path_expression(path)] = loader.get_app(app_name, global_conf=global_conf)
    return urlmap
