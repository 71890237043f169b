"""TLS for GSock and GServerSock: ``ssl_options`` -> an ``ssl.SSLContext``.

``ssl_options`` is either an ``ssl.SSLContext`` (used as it is) or a dict with these keys
(all optional; an unknown key is an error, so a typo does not silently weaken security):

==================  =================================================================
key                 meaning
==================  =================================================================
certfile            PEM file with the certificate chain (required on a server).
keyfile             PEM file with the private key (default: inside ``certfile``).
password            Password of the key (str, bytes or a callable).
cafile, capath,     Trusted CAs (``load_verify_locations``).  A client with none of
cadata              them trusts the system's default CAs.
verify_mode         ``CERT_NONE`` / ``CERT_OPTIONAL`` / ``CERT_REQUIRED`` (name, int or
                    ``ssl.VerifyMode``); ``cert_reqs`` is ginsfsm's spelling.
                    Default: REQUIRED on a client, NONE on a server (set REQUIRED with a
                    ``cafile`` for client certificates).
check_hostname      Client: check the server's name (default True, only with
                    ``verify_mode`` REQUIRED).
server_hostname     Client: the name to send (SNI) and to check (default: the host
                    connected to).
minimum_version     ``TLSv1_2`` (default) or ``TLSv1_3`` (name or ``ssl.TLSVersion``).
ciphers             OpenSSL cipher string (TLS 1.2 and below).
alpn_protocols      List of ALPN protocol names.
==================  =================================================================

Files are read when the context is built — at ``create_gobj`` (the GSock's
``start_up``) — so a missing or unreadable file, a key that does not match the
certificate or an unknown option raises ``GConfigValidateError`` naming the option.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, Final

from fsmio.core.errors import GConfigValidateError

__all__ = ["TLS_OPTION_KEYS", "make_ssl_context", "server_hostname_of"]

TLS_OPTION_KEYS: Final = frozenset(
    (
        "certfile",
        "keyfile",
        "password",
        "cafile",
        "capath",
        "cadata",
        "verify_mode",
        "cert_reqs",
        "check_hostname",
        "server_hostname",
        "minimum_version",
        "ciphers",
        "alpn_protocols",
    )
)

_VERIFY_NAMES: Final = {
    "cert_none": ssl.CERT_NONE,
    "none": ssl.CERT_NONE,
    "cert_optional": ssl.CERT_OPTIONAL,
    "optional": ssl.CERT_OPTIONAL,
    "cert_required": ssl.CERT_REQUIRED,
    "required": ssl.CERT_REQUIRED,
}

_VERSION_NAMES: Final = {
    "tlsv1_2": ssl.TLSVersion.TLSv1_2,
    "tls1_2": ssl.TLSVersion.TLSv1_2,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1_3": ssl.TLSVersion.TLSv1_3,
    "tls1_3": ssl.TLSVersion.TLSv1_3,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def _fail(owner: str, key: str, value: Any, why: str) -> GConfigValidateError:
    return GConfigValidateError(f"{owner}: invalid ssl_options[{key!r}] = {value!r}: {why}")


def _verify_mode(owner: str, key: str, value: Any) -> ssl.VerifyMode:
    if isinstance(value, ssl.VerifyMode):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return ssl.VerifyMode(value)
        except ValueError:
            pass
    if isinstance(value, str) and value.strip().lower() in _VERIFY_NAMES:
        return _VERIFY_NAMES[value.strip().lower()]
    raise _fail(owner, key, value, "expected CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED")


def _min_version(owner: str, value: Any) -> ssl.TLSVersion:
    if isinstance(value, ssl.TLSVersion):
        version = value
    elif isinstance(value, str) and value.strip().lower() in _VERSION_NAMES:
        version = _VERSION_NAMES[value.strip().lower()]
    else:
        raise _fail(owner, "minimum_version", value, "expected TLSv1_2 or TLSv1_3")
    if version < ssl.TLSVersion.TLSv1_2:
        raise _fail(owner, "minimum_version", value, "TLS below 1.2 is not allowed")
    return version


def _check_file(owner: str, key: str, path: Any) -> str:
    if not isinstance(path, str) or not path:
        raise _fail(owner, key, path, "expected a file path")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise _fail(owner, key, path, f"cannot read it ({exc.strerror or exc})") from None
    return path


def make_ssl_context(
    ssl_options: Any, server_side: bool, owner: str = "GSock"
) -> ssl.SSLContext | None:
    """The context for ``ssl_options`` (None when it is empty: plain TCP).

    ``GConfigValidateError`` for anything wrong, with ``owner`` (the gobj) in the message.
    """
    if isinstance(ssl_options, ssl.SSLContext):
        return ssl_options
    if not ssl_options:
        return None
    if not isinstance(ssl_options, Mapping):
        raise GConfigValidateError(
            f"{owner}: ssl_options must be a dict or an ssl.SSLContext, "
            f"not {type(ssl_options).__name__}"
        )
    unknown = sorted(set(ssl_options) - TLS_OPTION_KEYS)
    if unknown:
        raise GConfigValidateError(
            f"{owner}: unknown ssl_options key(s) {unknown}; known: {sorted(TLS_OPTION_KEYS)}"
        )
    opts = dict(ssl_options)
    purpose = ssl.Purpose.CLIENT_AUTH if server_side else ssl.Purpose.SERVER_AUTH
    cafile = opts.get("cafile")
    capath = opts.get("capath")
    cadata = opts.get("cadata")
    if cafile is not None:
        _check_file(owner, "cafile", cafile)
    if capath is not None and not isinstance(capath, str):
        raise _fail(owner, "capath", capath, "expected a directory path")
    try:
        if server_side:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        else:
            # create_default_context: CERT_REQUIRED + check_hostname, system CAs unless
            # the caller names its own.
            ctx = ssl.create_default_context(purpose, cafile=cafile, capath=capath, cadata=cadata)
        if server_side and (cafile or capath or cadata):
            ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    except (ssl.SSLError, OSError, ValueError, TypeError) as exc:
        raise GConfigValidateError(f"{owner}: cannot load the CA of ssl_options: {exc}") from None
    ctx.minimum_version = _min_version(owner, opts.get("minimum_version", "TLSv1_2"))
    certfile = opts.get("certfile")
    keyfile = opts.get("keyfile")
    if certfile is None and keyfile is not None:
        raise _fail(owner, "keyfile", keyfile, "a keyfile needs a certfile")
    if certfile is not None:
        _check_file(owner, "certfile", certfile)
        if keyfile is not None:
            _check_file(owner, "keyfile", keyfile)
        try:
            ctx.load_cert_chain(certfile, keyfile, opts.get("password"))
        except (ssl.SSLError, OSError, ValueError, TypeError) as exc:
            raise GConfigValidateError(
                f"{owner}: ssl_options certfile {certfile!r} / keyfile {keyfile!r} do not "
                f"load (a key that does not match the certificate, a wrong password or "
                f"not PEM): {exc}"
            ) from None
    elif server_side:
        raise GConfigValidateError(f"{owner}: a TLS server needs ssl_options['certfile']")
    mode_key = "verify_mode" if "verify_mode" in opts else "cert_reqs"
    if mode_key in opts:
        mode = _verify_mode(owner, mode_key, opts[mode_key])
        if mode != ssl.CERT_REQUIRED and not server_side:
            ctx.check_hostname = False  # it requires CERT_REQUIRED
        ctx.verify_mode = mode
    if "check_hostname" in opts:
        check = opts["check_hostname"]
        if not isinstance(check, bool):
            raise _fail(owner, "check_hostname", check, "expected a bool")
        if check and ctx.verify_mode != ssl.CERT_REQUIRED:
            raise _fail(owner, "check_hostname", check, "needs verify_mode CERT_REQUIRED")
        if not server_side:
            ctx.check_hostname = check
    ciphers = opts.get("ciphers")
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except (ssl.SSLError, TypeError) as exc:
            raise _fail(owner, "ciphers", ciphers, str(exc)) from None
    alpn = opts.get("alpn_protocols")
    if alpn is not None:
        if isinstance(alpn, str) or not all(isinstance(p, str) for p in alpn):
            raise _fail(owner, "alpn_protocols", alpn, "expected a list of str")
        ctx.set_alpn_protocols(list(alpn))
    server_hostname = opts.get("server_hostname")
    if server_hostname is not None and not isinstance(server_hostname, str):
        raise _fail(owner, "server_hostname", server_hostname, "expected a str")
    return ctx


def server_hostname_of(ssl_options: Any) -> str | None:
    """The ``server_hostname`` set in ``ssl_options`` (None: use the host)."""
    if isinstance(ssl_options, Mapping):
        value = ssl_options.get("server_hostname")
        return value if isinstance(value, str) else None
    return None
