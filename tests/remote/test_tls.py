"""TLS to NATS: verified by default; an untrusted CA is refused and reported."""

from __future__ import annotations

from pathlib import Path

import trustme

from .apps import Running, make_app, wait_until
from .natsserver import NatsServer


def test_tls_verified_and_untrusted_ca_refused(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    other_ca = tmp_path / "other-ca"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    server = NatsServer(
        config=f'tls {{\n  cert_file: "{cert_file}"\n  key_file: "{key_file}"\n}}\n'
    )
    try:
        server.start()
        url = f"tls://127.0.0.1:{server.port}"
        good = make_app("trusting", url, ssl_options={"cafile": str(ca_file)})
        bad = make_app("fooled", url, ssl_options={"cafile": str(other_ca)})
        plain = make_app("plain", server.url)
        running = [Running(app[0]) for app in (good, bad, plain)]
        try:
            wait_until(lambda: good[1].named("EV_REMOTE_CONNECTED"), what="TLS connection")
            wait_until(lambda: bad[1].named("EV_REMOTE_ERROR"), what="refused CA")
            assert "certificate verify failed" in bad[1].named("EV_REMOTE_ERROR")[0]["message"]
            assert not bad[1].named("EV_REMOTE_CONNECTED")
            # Plain text to a TLS-only server never connects either.
            wait_until(lambda: plain[1].named("EV_REMOTE_ERROR"), what="plaintext refused")
            assert not plain[1].named("EV_REMOTE_CONNECTED")
        finally:
            for run in running:
                run.stop()
    finally:
        server.close()
