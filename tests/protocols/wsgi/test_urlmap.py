"""URLMap and parse_path_expression: Paste's urlmap semantics."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsmio.protocols.wsgi.urlmap import URLMap, parse_path_expression, urlmap_factory


def named(name: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]

    app.__name__ = name
    return app


def call(app: Any, path: str, host: str = "example.com", scheme: str = "http") -> tuple[str, str]:
    seen: list[str] = []
    environ = {
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "HTTP_HOST": host,
        "SERVER_NAME": "srv",
        "wsgi.url_scheme": scheme,
    }
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    return seen[0], body.decode()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("/foobar", "/foobar"),
        ("domain foobar.com port 20 /", "http://foobar.com:20//"),
        ("domain foobar.com /app", "http://foobar.com//app"),
        ("domain foobar.com", "http://foobar.com"),
        ("", ""),
    ],
)
def test_parse_path_expression(expression: str, expected: str) -> None:
    assert parse_path_expression(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("domain", "'domain' must be followed"),
        ("port", "'port' must be followed"),
        ("domain a domain b", "'domain' given twice"),
        ("domain a port 1 port 2", "'port' given twice"),
        ("/a /b", "more than one path"),
        ("port 80 /", "you must also give a domain"),
    ],
)
def test_parse_path_expression_errors(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_path_expression(expression)


def test_longest_prefix_wins_and_script_name_moves() -> None:
    urlmap = URLMap()
    urlmap["/"] = named("root")
    urlmap["/app2"] = named("two")
    urlmap["/app2/deep"] = named("deep")
    assert call(urlmap, "/") == ("200 OK", "root |/")
    assert call(urlmap, "/x/y") == ("200 OK", "root |/x/y")
    assert call(urlmap, "/app2") == ("200 OK", "two /app2|")
    assert call(urlmap, "/app2/z") == ("200 OK", "two /app2|/z")
    assert call(urlmap, "/app2/deep/q") == ("200 OK", "deep /app2/deep|/q")
    # a prefix matches whole segments only
    assert call(urlmap, "/app22") == ("200 OK", "root |/app22")


def test_not_found_without_root() -> None:
    urlmap = URLMap()
    urlmap["/only"] = named("only")
    status, body = call(urlmap, "/other")
    assert status == "404 Not Found"
    assert "could not be found" in body
    custom = URLMap(not_found_app=named("custom"))
    assert call(custom, "/x") == ("200 OK", "custom |/x")


def test_domains_and_ports() -> None:
    urlmap = URLMap()
    urlmap["/"] = named("any")
    urlmap[parse_path_expression("domain Example.com /")] = named("ex")
    urlmap[parse_path_expression("domain other.org port 8080 /api")] = named("other")
    urlmap[("third.net", "/t")] = named("third")
    assert call(urlmap, "/a", host="example.com")[1] == "ex |/a"
    assert call(urlmap, "/a", host="EXAMPLE.COM:80")[1] == "ex |/a"
    assert call(urlmap, "/a", host="nobody.net")[1] == "any |/a"
    assert call(urlmap, "/api/v", host="other.org:8080")[1] == "other /api|/v"
    assert call(urlmap, "/api/v", host="other.org:9090")[1] == "any |/api/v"
    assert call(urlmap, "/t", host="third.net")[1] == "third /t|"
    assert call(urlmap, "/t", host="[::1]:8000")[1] == "any |/t"


def test_mapping_interface() -> None:
    urlmap = URLMap()
    one, two = named("one"), named("two")
    urlmap["/one/"] = one
    urlmap["//two//"] = two
    assert urlmap["/one"] is one
    assert urlmap["/two"] is two
    assert "/one" in urlmap
    assert "/three" not in urlmap
    assert len(urlmap) == 2
    assert sorted(urlmap) == [(None, "/one"), (None, "/two")]
    urlmap["/one"] = two  # replaces, no duplicate
    assert len(urlmap) == 2
    assert urlmap["/one"] is two
    urlmap["/one"] = None  # None deletes
    assert "/one" not in urlmap
    del urlmap["/two"]
    assert len(urlmap) == 0
    with pytest.raises(KeyError, match="No application"):
        urlmap["/missing"]
    with pytest.raises(ValueError, match="must start with /"):
        urlmap["relative"] = one
    with pytest.raises(TypeError, match="must be callable"):
        urlmap["/x"] = "not an app"  # type: ignore[assignment]


def test_urlmap_factory_with_a_loader() -> None:
    apps = {"home": named("home"), "blog": named("blog"), "nf": named("nf")}

    class Loader:
        def get_app(self, name: str, global_conf: Any = None) -> Any:
            return apps[name]

    urlmap = urlmap_factory(Loader(), {}, **{"/": "home", "/blog": "blog", "not_found_app": "nf"})
    assert call(urlmap, "/blog/post")[1] == "blog /blog|/post"
    assert call(urlmap, "/")[1] == "home |/"
    assert urlmap.not_found_application is apps["nf"]


segment = st.text(alphabet="abcxyz09-", min_size=1, max_size=4)
paths = st.lists(segment, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))


@settings(max_examples=200, deadline=None)
@given(prefixes=st.lists(paths, min_size=1, max_size=6, unique=True), path=paths)
def test_urlmap_picks_the_longest_whole_segment_prefix(prefixes: list[str], path: str) -> None:
    urlmap = URLMap()
    for prefix in prefixes:
        urlmap[prefix] = named(prefix)
    normalized = [p.rstrip("/") for p in prefixes]
    matches = [p for p in normalized if path == p or path.startswith(p + "/")]
    status, body = call(urlmap, path)
    if not matches:
        assert status == "404 Not Found"
        return
    best = max(matches, key=len)
    name, _, rest = body.partition(" ")
    script_name, _, path_info = rest.partition("|")
    assert status == "200 OK"
    assert name == (best or "/") or urlmap[best] is urlmap[name]
    assert script_name == best
    assert script_name + path_info == path
