"""``fsmio nats-config APP.toml...``: the NATS server ``authorization`` block for the
GAplics that these ``fsmio run`` files describe.

For each file: the GAplic's name and roles from ``[gaplic]``, and the GRemote's ``user``,
``password`` (or ``nkeys_seed``: its public key is written instead), ``subject_prefix``,
``durable``, ``durable_stream`` and ``peers`` — from its ``[[gobj]]`` config, else from
``[settings]`` (``"GRemote.user"``, ``"<gobj name>.user"`` or a bare ``user``).  A file
without a GRemote is an error.  A missing password is written ``CHANGE-ME`` (and said on
standard error): the block is meant to be reviewed, not trusted blindly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from fsmio.remote.c_remote import GRemote
from fsmio.remote.errors import RemoteNameError
from fsmio.remote.natsconf import NatsIdentity, authorization_block

from . import EXIT_BAD_INPUT, ToolError, load_gclass
from .runner import AppConfig, load_config

__all__ = ["identity_of", "print_nats_config"]

_KEYS = (
    "user",
    "password",
    "subject_prefix",
    "durable",
    "durable_stream",
    "nkeys_seed",
    "peers",
)


def identity_of(cfg: AppConfig) -> NatsIdentity:
    """The NATS identity of the GAplic that ``cfg`` describes."""
    remotes = []
    for spec in cfg.gobjs:
        try:
            gclass = load_gclass(spec.gclass_path)
        except ToolError:
            continue
        if issubclass(gclass, GRemote):
            remotes.append(spec)
    if len(remotes) != 1:
        raise ToolError(
            f"{cfg.path}: expected one [[gobj]] of gclass fsmio.remote:GRemote, "
            f"found {len(remotes)}",
            EXIT_BAD_INPUT,
        )
    spec = remotes[0]
    values: dict[str, Any] = {}
    for key in _KEYS:
        for source in (key, f"GRemote.{key}", f"{spec.name}.{key}"):
            if source in cfg.settings:
                values[key] = cfg.settings[source]
        if key in spec.config:
            values[key] = spec.config[key]
    notes = []
    nkey = _nkey_public_key(cfg, str(values.get("nkeys_seed") or ""))
    if not nkey and not values.get("password"):
        notes.append("no password in the file: set one here and in the file")
    try:
        return NatsIdentity(
            gaplic=cfg.name,
            roles=tuple(cfg.roles),
            subject_prefix=str(values.get("subject_prefix", "fsmio")),
            user=str(values.get("user") or cfg.name),
            password=str(values.get("password") or ""),
            nkey=nkey,
            durable=str(values.get("durable", "")).strip().lower() in ("1", "true", "yes", "on"),
            durable_stream=str(values.get("durable_stream") or "FSMIO"),
            peers=_as_names(values.get("peers")),
            notes=notes,
        )
    except RemoteNameError as exc:
        raise ToolError(f"{cfg.path}: {exc}", EXIT_BAD_INPUT) from None


def _as_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    return tuple(str(item) for item in value or ())


def _nkey_public_key(cfg: AppConfig, seed_path: str) -> str:
    """The public key (``U...``) of the nkey seed file, or "" when there is none."""
    if not seed_path:
        return ""
    path = Path(seed_path)
    if not path.is_absolute():
        path = cfg.path.parent / path
    try:
        import nkeys  # type: ignore[import-untyped]  # no stubs, no py.typed
    except ImportError:
        raise ToolError("nkeys_seed needs the nkeys package: pip install 'fsmio[nats]'") from None
    try:
        seed = path.read_bytes().strip()
        public: bytes = nkeys.from_seed(bytearray(seed)).public_key
    except OSError as exc:
        raise ToolError(f"{cfg.path}: nkeys_seed {str(path)!r}: {exc.strerror}") from None
    except Exception as exc:
        raise ToolError(f"{cfg.path}: nkeys_seed {str(path)!r}: not an nkey seed ({exc})") from None
    return public.decode()


def print_nats_config(paths: list[str], out: TextIO | None = None) -> int:
    """Print the block for ``paths``; return the exit code."""
    out = out or sys.stdout
    identities = [identity_of(load_config(Path(path))) for path in paths]
    try:
        text = authorization_block(identities)
    except (ValueError, RemoteNameError) as exc:
        raise ToolError(str(exc), EXIT_BAD_INPUT) from None
    for identity in identities:
        for note in identity.notes:
            print(f"fsmio nats-config: {identity.gaplic}: {note}", file=sys.stderr)
    out.write(text)
    return 0
