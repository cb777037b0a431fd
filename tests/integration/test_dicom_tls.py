"""DICOM TLS (PS3.15 Annex B, BCP 195: TLS 1.2 and later): the `[dicom.tls]` listener beside
the clear one, client certificates required (docs/security.md), and C-MOVE's C-STORE to an
`[[ae]] tls = true` destination.

Real peers only: DCMTK echoscu / storescu / storescp with `+tls`, pynetdicom with an
ssl.SSLContext (`tls_args`), Python's ssl for a TLS 1.1 client. Certificates from tlsca.py:
the gateway presents `dual` (127.0.0.1, server and client authentication) and trusts the
test CA; `wrong_client` is signed by another CA.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import ssl
import subprocess
import warnings

import pytest
from pynetdicom.sop_class import Verification

import community as cm
import datagen
import harness
import tlsca
from harness import StoreSCP, movescu, spool_list, wait_until

HANG = 30


@pytest.fixture
def pki(tmp_path) -> tlsca.Pki:
    return tlsca.make_pki(tmp_path / "pki")


def tls_table(pki: tlsca.Pki, port: int, **extra) -> dict:
    return {"port": port, "certificate": str(pki.dual_cert), "key": str(pki.dual_key),
            "ca": str(pki.ca_cert), **extra}


def tls_gateway(start_gateway, pki, clear: bool = True, **config):
    port = harness.free_port()
    tables = {"dicom.tls": tls_table(pki, port), **config.pop("tables", {})}
    if not clear:
        config["port"] = 0
    gw = start_gateway(tables=tables, **config)
    gw.tls_port = port
    return gw


def client_context(pki, cert=None, key=None) -> ssl.SSLContext:
    """A TLS client trusting the test CA, presenting `cert` when given."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


def pn_tls_echo(port: int, context: ssl.SSLContext, aec: str = harness.DEFAULT_AE) -> int | None:
    return harness.pn_echo(port, aec=aec, tls_args=(context, "127.0.0.1"))


def dcmtk_tls(pki, cert=None, key=None) -> list[str]:
    """DCMTK's TLS options: our certificate (or anonymous TLS), the CA to check the gateway's."""
    own = ["+tls", str(key), str(cert)] if cert else ["+tla"]
    return [*own, "+cf", str(pki.ca_cert)]


def status(gw) -> dict:
    out = subprocess.run([str(harness.passerellectl_path()), "status", "--json", "--socket",
                          str(gw.spool / "status.sock")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def tls_alerts(gw) -> list[dict]:
    """The audit rows of refused TLS connections (Security Alert, Node Authentication)."""
    with sqlite3.connect(f"file:{gw.spool / 'spool.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT content FROM audit WHERE action = 'associationRejected'").fetchall()
    return [c for c in (json.loads(r[0]) for r in rows) if "TLS" in (c.get("outcomeDescription") or "")]


def refused_in_log(gw, reason: str) -> bool:
    return any("TLS connection refused" in line and reason in line and "127.0.0.1" in line
               for line in gw.log_text().splitlines())


# --------------------------------------------------------------------------
# the listener


def test_echo_and_store_over_tls_with_a_client_certificate(start_gateway, pki, tmp_path):
    gw = tls_gateway(start_gateway, pki)
    echo = harness.echoscu(gw.tls_port, extra=dcmtk_tls(pki, pki.client_cert, pki.client_key))
    assert echo.returncode == 0, echo.output
    assert pn_tls_echo(gw.tls_port, client_context(pki, pki.client_cert, pki.client_key)) == 0x0000

    ct = datagen.make_ct(tmp_path / "ct.dcm", datagen.Study.new(), rows=64, cols=64)
    store = harness.storescu([ct], gw.tls_port, extra=dcmtk_tls(pki, pki.client_cert, pki.client_key))
    assert store.acked == [str(ct)], store.output
    assert wait_until(lambda: harness.sop_uid(ct) in {r["sop_instance_uid"] for r in spool_list(gw.spool)}, 10), \
        spool_list(gw.spool)
    # The clear port goes on beside it.
    assert harness.pn_echo(gw.port) == 0x0000
    [listener] = status(gw)["listening"]
    assert listener["port"] == gw.port and listener["tls_port"] == gw.tls_port, listener
    assert f"tls_port={gw.tls_port}" in gw.log_text()
    assert tls_alerts(gw) == []


def test_no_client_certificate_is_refused_logged_and_audited(start_gateway, pki):
    gw = tls_gateway(start_gateway, pki)
    assert pn_tls_echo(gw.tls_port, client_context(pki)) is None
    anonymous = harness.echoscu(gw.tls_port, extra=dcmtk_tls(pki))
    assert anonymous.returncode != 0, anonymous.output
    assert wait_until(lambda: refused_in_log(gw, "no client certificate"), 10), gw.log_tail()
    assert wait_until(lambda: len(tls_alerts(gw)) >= 2, 10), tls_alerts(gw)
    alert = tls_alerts(gw)[0]
    assert alert["outcomeDescription"] == "TLS: no client certificate", alert
    assert alert["actor"]["address"].startswith("127.0.0.1:"), alert
    # Nothing was received, and the listener still serves.
    assert spool_list(gw.spool) == []
    assert pn_tls_echo(gw.tls_port, client_context(pki, pki.client_cert, pki.client_key)) == 0x0000


def test_a_certificate_of_another_ca_is_refused(start_gateway, pki):
    gw = tls_gateway(start_gateway, pki)
    assert pn_tls_echo(gw.tls_port, client_context(pki, pki.wrong_client_cert, pki.wrong_client_key)) is None
    dcmtk = harness.echoscu(gw.tls_port, extra=dcmtk_tls(pki, pki.wrong_client_cert, pki.wrong_client_key))
    assert dcmtk.returncode != 0, dcmtk.output
    assert wait_until(lambda: refused_in_log(gw, "certificate not signed by the configured CA"), 10), gw.log_tail()
    assert wait_until(lambda: len(tls_alerts(gw)) >= 2, 10)
    assert all(a["outcomeDescription"].startswith("TLS: certificate not signed by the configured CA")
               for a in tls_alerts(gw)), tls_alerts(gw)


def test_a_tls_1_1_client_is_refused(start_gateway, pki):
    """OpenSSL 3 here still offers TLS 1.1 at security level 0 (checked against openssl
    s_server -tls1_1); the gateway answers protocol_version and says so."""
    gw = tls_gateway(start_gateway, pki)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.load_verify_locations(str(pki.ca_cert))
    old.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError, match="(?i)protocol version|unsupported protocol"):
            old.wrap_socket(raw, server_hostname="127.0.0.1")
    assert wait_until(lambda: refused_in_log(gw, "TLS version refused"), 10), gw.log_tail()
    assert pn_tls_echo(gw.tls_port, client_context(pki, pki.client_cert, pki.client_key)) == 0x0000


def test_clear_port_off_leaves_only_tls(start_gateway, pki):
    gw = tls_gateway(start_gateway, pki, clear=False)
    assert pn_tls_echo(gw.tls_port, client_context(pki, pki.client_cert, pki.client_key)) == 0x0000
    [listener] = status(gw)["listening"]
    assert "port" not in listener and listener["tls_port"] == gw.tls_port, listener
    assert "port=off" in gw.log_text()
    # A clear association on the TLS port gets nowhere, and is told apart in the log.
    assert harness.pn_echo(gw.tls_port) is None
    assert wait_until(lambda: refused_in_log(gw, "not a TLS handshake"), 10), gw.log_tail()


# --------------------------------------------------------------------------
# C-MOVE to a TLS destination


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory) -> cm.Community:
    """A community hub holding one study (TOURS, CT x2 + SR)."""
    hub = cm.build_community(tmp_path_factory.mktemp("tls-hub"),
                             specs=[s for s in cm.STUDIES if s.key == "tours_sr"])
    yield hub
    hub.stop()


def test_move_to_a_tls_destination(start_gateway, pki, small_hub, tmp_path):
    """storescp +tls (requires our certificate, checks it against the test CA) as the
    `[[ae]] tls = true` destination: the gateway presents its [dicom.tls] certificate and
    trusts the [dicom.tls] ca; every instance arrives. movescu itself talks in clear."""
    scp = StoreSCP(tmp_path / "received", "TLSSCP",
                   extra=["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca_cert)],
                   probe_tls=(client_context(pki, pki.client_cert, pki.client_key), "127.0.0.1")).start()
    try:
        config = cm.gateway_config(small_hub)
        config["aes"] = [{"title": "TLSSCP", "host": "127.0.0.1", "port": scp.port, "tls": True}]
        gw = tls_gateway(start_gateway, pki, **config)
        study = small_hub.study("tours_sr")
        res = movescu(gw.port, "TLSSCP", ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                      aet="PACS_QR", aec="MIRC", workdir=tmp_path / "move", timeout=HANG * 4)
        assert res.status == 0x0000, res.output[-4000:]
        assert res.final.completed == study.n_instances, res.final
        # storescp listens with TLS only: what it holds came over TLS.
        assert set(scp.by_sop()) == set(study.sop_uids)
    finally:
        scp.stop()


def test_move_to_a_tls_destination_that_refuses_us_fails_cleanly(start_gateway, pki, small_hub, tmp_path):
    """The destination trusts another CA only: the sub-operations fail (A801-family answer
    naming the TLS failure), and the gateway goes on."""
    scp = StoreSCP(tmp_path / "received", "TLSSCP",
                   extra=["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.wrong_ca_cert)],
                   probe_tls=(client_context(pki, pki.wrong_client_cert, pki.wrong_client_key), "127.0.0.1")).start()
    try:
        config = cm.gateway_config(small_hub)
        config["aes"] = [{"title": "TLSSCP", "host": "127.0.0.1", "port": scp.port, "tls": True}]
        gw = tls_gateway(start_gateway, pki, **config)
        study = small_hub.study("tours_sr")
        res = movescu(gw.port, "TLSSCP", ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                      aet="PACS_QR", aec="MIRC", workdir=tmp_path / "move", timeout=HANG * 4)
        assert res.status == 0xA702, res.output[-4000:]
        assert "TLS handshake failed" in res.output, res.output[-4000:]
        assert scp.files() == []
        gw.check_alive()
    finally:
        scp.stop()
