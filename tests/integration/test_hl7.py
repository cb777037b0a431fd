"""The HL7 v2 MLLP listener (docs/hl7.md), against the `hl7` package's MLLP client and raw
sockets: ACKs only once durable, duplicates answered with the same ACK, refusals with a
reason, framing faults, character sets, TLS, crash recovery."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

import harness
import hl7peer
import tlsca
from hl7peer import adt_a08, ack_fields, frame, raw_exchange, send, unframe


def hl7_gateway(start_gateway, **hl7_settings):
    port = harness.free_port()
    tables = {"hl7": {"port": port, "bind": "127.0.0.1", **hl7_settings.pop("hl7", {})}}
    tables.update(hl7_settings.pop("tables", {}))
    gw = start_gateway(tables=tables, **hl7_settings)
    gw.hl7_port = port
    assert harness.wait_until(lambda: _connectable(port), 10), gw.log_tail()
    return gw


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def ctl(gw, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(harness.passerellectl_path()), *args, "--spool", str(gw.spool)],
                          capture_output=True, text=True, timeout=30)


def hl7_list(gw, *extra) -> list[dict]:
    out = ctl(gw, "hl7", "list", "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_adt_is_acknowledged_once_journaled(start_gateway):
    gw = hl7_gateway(start_gateway)
    ack = send(gw.hl7_port, adt_a08("MSG0001"))
    fields = ack_fields(ack)
    assert fields["code"] == "AA" and fields["control_id"] == "MSG0001", str(ack)
    assert fields["type"].startswith("ACK^A08")
    msh = ack.segment("MSH")
    assert str(msh[3]) == "PASSERELLE" and str(msh[5]) == "PAS" and str(msh[6]) == "CHRU"
    # Then applied by the bridge: the identity in force for P123 of CHRU-TOURS (docs/hl7.md).
    assert harness.wait_until(lambda: [r["state"] for r in hl7_list(gw)] == ["applied"], 10), hl7_list(gw)
    rows = hl7_list(gw)
    assert [(r["control_id"], r["message_type"]) for r in rows] == [("MSG0001", "ADT^A08")]
    assert rows[0]["detail"].startswith("patient P123 of CHRU-TOURS: name DUPONT^JEAN"), rows[0]
    # The durable copy is a journal record holding the message as sent.
    segment = gw.spool / rows[0]["journal_segment"]
    data = segment.read_bytes()
    offset = rows[0]["journal_offset"]
    assert data[offset:offset + rows[0]["bytes"]] == adt_a08("MSG0001").encode()
    shown = ctl(gw, "hl7", "show", "MSG0001")
    assert shown.returncode == 0 and "PID|1||P123^^^CHRU-TOURS^PI||DUPONT^JEAN" in shown.stdout
    assert "MSA|AA|MSG0001" in shown.stdout
    status = ctl(gw, "hl7", "status", "--json")
    assert json.loads(status.stdout)["messages"]["applied"] == 1


def test_a_resent_control_id_gets_the_same_ack_and_is_kept_once(start_gateway):
    gw = hl7_gateway(start_gateway)
    with hl7peer.client(gw.hl7_port) as c:
        first = c.send_message(adt_a08("DUP-1"))
        second = c.send_message(adt_a08("DUP-1"))
    assert first == second and ack_fields(hl7peer.parse_ack(first))["code"] == "AA"
    # The same control ID from another sender is another message.
    other = send(gw.hl7_port, adt_a08("DUP-1", sender=("PAS2", "CHRU")))
    assert ack_fields(other)["code"] == "AA"
    rows = hl7_list(gw)
    assert sorted((r["sending_application"], r["control_id"]) for r in rows) == [("PAS", "DUP-1"), ("PAS2", "DUP-1")]
    # After a restart too (answered from the index).
    gw.stop()
    gw.restart()
    assert harness.wait_until(lambda: _connectable(gw.hl7_port), 10)
    assert str(send(gw.hl7_port, adt_a08("DUP-1"))) == str(hl7peer.parse_ack(first))
    assert len(hl7_list(gw)) == 2


def test_concurrent_resends_are_journaled_once(start_gateway):
    gw = hl7_gateway(start_gateway)
    acks: list[bytes] = []
    lock = threading.Lock()

    def sender():
        with hl7peer.client(gw.hl7_port) as c:
            ack = c.send_message(adt_a08("RACE-1"))
        with lock:
            acks.append(ack)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(acks) == 8 and len(set(acks)) == 1, acks
    assert [r["control_id"] for r in hl7_list(gw)] == ["RACE-1"]


@pytest.mark.parametrize("message, code, error, where", [
    (adt_a08("R-TYPE", message_code="ORM", event="O01"), "AR", "200", "MSH^1^9"),
    (adt_a08("R-EVENT", event="A01"), "AR", "201", "MSH^1^9"),
    (adt_a08("R-VERSION", version="2.7"), "AR", "203", "MSH^1^12"),
    (adt_a08("R-PROC", processing="X"), "AR", "202", "MSH^1^11"),
    (adt_a08("R-SENDER", sender=("BILLING", "CHRU")), "AR", "207", "MSH^1^3"),
    (adt_a08("R-NOPID").replace("PID|1|", "NTE|1|"), "AE", "100", "PID"),
])
def test_refused_messages_get_a_reason(start_gateway, message, code, error, where):
    gw = hl7_gateway(start_gateway, hl7={"allowed_senders": ["PAS", "RIS^CHRU"]})
    control_id = message.split("\r")[0].split("|")[9]
    ack = send(gw.hl7_port, message)
    fields = ack_fields(ack)
    assert fields["code"] == code, str(ack)
    assert fields["control_id"] == control_id
    assert fields["err"].startswith("ERR"), str(ack)
    if error:
        assert error in fields["err"] and where in fields["err"], fields["err"]
    rows = hl7_list(gw, "--failed")
    assert len(rows) == 1 and rows[0]["state"] == "refused" and rows[0]["detail"].startswith(code)
    # Nothing refused is journaled; the listener goes on.
    assert rows[0]["journal_segment"] is None
    assert ack_fields(send(gw.hl7_port, adt_a08("NEXT-1")))["code"] == "AA"


def test_missing_control_id_and_bad_encoding_characters(start_gateway):
    gw = hl7_gateway(start_gateway)
    no_id = adt_a08("X").replace("|X|P|", "||P|")
    fields = ack_fields(send(gw.hl7_port, no_id))
    assert fields["code"] == "AE" and "101" in fields["err"] and "MSH^1^10" in fields["err"], fields
    bad = adt_a08("BADENC").replace("MSH|^~\\&|", "MSH|^^\\&|", 1)
    data = raw_exchange(gw.hl7_port, frame(bad.encode()))
    ack = unframe(data).decode()
    assert "MSA|AE|BADENC" in ack, ack
    ascii_with_latin1 = adt_a08("ASCII-1", family="H\xe9l\xe8ne").encode("latin-1")
    ack = unframe(raw_exchange(gw.hl7_port, frame(ascii_with_latin1))).decode("latin-1")
    assert "MSA|AE|ASCII-1" in ack, ack
    assert {r["control_id"] for r in hl7_list(gw, "--failed")} == {"", "BADENC", "ASCII-1"}


@pytest.mark.parametrize("charset, encoding", [("8859/1", "latin-1"), ("UNICODE UTF-8", "utf-8")])
def test_character_sets(start_gateway, charset, encoding):
    gw = hl7_gateway(start_gateway)
    message = adt_a08("CS-1", family="HÉLÈNE", given="Zoë", charset=charset)
    ack = send(gw.hl7_port, message, encoding=encoding)
    assert ack_fields(ack)["code"] == "AA", str(ack)
    assert str(ack.segment("MSH")[18]) == charset
    shown = ctl(gw, "hl7", "show", "CS-1")
    assert "HÉLÈNE^Zoë" in shown.stdout, shown.stdout


def test_framing_faults_never_stop_the_listener(start_gateway):
    gw = hl7_gateway(start_gateway, hl7={"max_message_size": "1MiB", "idle_timeout": "2s"})
    port = gw.hl7_port
    # Not MLLP at all: closed without an answer.
    assert raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    # A frame without end block, then the client goes away: nothing acknowledged, nothing kept.
    assert raw_exchange(port, hl7peer.SB + adt_a08("TRUNC-1").encode(), timeout=1) == b""
    # A frame without end block on a connection left open: closed by the idle timeout.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(hl7peer.SB + adt_a08("TRUNC-2").encode())
    assert s.recv(100) == b""
    s.close()
    # A frame that is not HL7 (no MSH): closed.
    assert raw_exchange(port, frame(b"hello")) == b""
    # Over the limit: AR naming the size, and the same connection goes on.
    big = adt_a08("BIG-1").replace("PV1|1|N", "NTE|1||" + "A" * (3 << 20)).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(frame(big))
    reply = b""
    while not reply.endswith(hl7peer.EB + hl7peer.CR):
        chunk = s.recv(65536)
        assert chunk, reply
        reply += chunk
    text = unframe(reply).decode()
    assert "MSA|AR|BIG-1" in text and "exceeds the maximum" in text, text
    s.sendall(frame(adt_a08("AFTER-BIG").encode()))
    reply = s.recv(65536)
    assert b"MSA|AA|AFTER-BIG" in reply
    s.close()
    # Two frames in one write: two ACKs, in order.
    reply = raw_exchange(port, frame(adt_a08("PIPE-1").encode()) + frame(adt_a08("PIPE-2").encode()), frames=2)
    assert reply.index(b"MSA|AA|PIPE-1") < reply.index(b"MSA|AA|PIPE-2"), reply
    ids = {r["control_id"] for r in hl7_list(gw)}
    assert ids == {"BIG-1", "AFTER-BIG", "PIPE-1", "PIPE-2"}
    assert {r["control_id"]: r["state"] for r in hl7_list(gw)}["BIG-1"] == "refused"
    gw.check_alive()
    log = gw.log_text()
    assert "does not speak MLLP" in log and "no end block" in log


def test_connections_from_other_hosts_are_closed(start_gateway):
    gw = hl7_gateway(start_gateway, hl7={"allowed_hosts": ["10.9.0.0/16"]})
    assert raw_exchange(gw.hl7_port, frame(adt_a08("HOST-1").encode())) == b""
    assert hl7_list(gw) == []
    assert "not in hl7.allowed_hosts" in gw.log_text()


def test_acknowledged_messages_survive_kill9(start_gateway):
    gw = hl7_gateway(start_gateway)
    for i in range(20):
        assert ack_fields(send(gw.hl7_port, adt_a08(f"K-{i}")))["code"] == "AA"
    gw.kill9()
    # Killed before its end block: the sender got nothing and sends it again.
    gw.restart()
    assert harness.wait_until(lambda: _connectable(gw.hl7_port), 10)
    s = socket.create_connection(("127.0.0.1", gw.hl7_port), timeout=5)
    s.sendall(hl7peer.SB + adt_a08("K-20").encode())
    gw.kill9()
    s.close()
    gw.restart()
    assert harness.wait_until(lambda: _connectable(gw.hl7_port), 10)
    assert ack_fields(send(gw.hl7_port, adt_a08("K-20")))["code"] == "AA"
    rows = hl7_list(gw, "--limit", "100")
    assert sorted(r["control_id"] for r in rows) == sorted(f"K-{i}" for i in range(21))
    # Every acknowledged message is applied after the restarts, once.
    assert harness.wait_until(lambda: all(r["state"] == "applied" for r in hl7_list(gw, "--limit", "100")), 15), \
        hl7_list(gw, "--limit", "100")


def test_status_and_metrics(start_gateway):
    gw = hl7_gateway(start_gateway)
    send(gw.hl7_port, adt_a08("ST-1"))
    send(gw.hl7_port, adt_a08("ST-2", version="2.1"))
    assert harness.wait_until(lambda: {r["state"] for r in hl7_list(gw)} == {"applied", "refused"}, 10)
    socket_path = str(gw.spool / "status.sock")
    out = subprocess.run([str(harness.passerellectl_path()), "status", "--json", "--socket", socket_path],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["hl7"]["port"] == gw.hl7_port
    assert report["hl7"]["messages"] == {"applied": 1, "refused": 1}
    assert report["hl7"]["corrections"] == {"pending": 0, "failing": 0, "verified": 0, "searches": 0}
    metrics = subprocess.run([str(harness.passerellectl_path()), "metrics", "--socket", socket_path],
                             capture_output=True, text=True, timeout=30).stdout
    assert 'passerelle_hl7_messages_total{outcome="accepted"} 1' in metrics, metrics
    assert 'passerelle_hl7_messages_total{outcome="refused"} 1' in metrics


def test_tls_listener(start_gateway, tmp_path):
    pki = tlsca.make_pki(tmp_path / "pki")
    gw = hl7_gateway(start_gateway, tables={"hl7.tls": {
        "certificate": str(pki.server_cert), "key": str(pki.server_key), "ca": str(pki.ca_cert),
        "require_client_certificate": True}})
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    reply = raw_exchange(gw.hl7_port, frame(adt_a08("TLS-1").encode()), tls=context)
    assert b"MSA|AA|TLS-1" in reply, reply
    # Without a client certificate: no ACK.
    bare = ssl.create_default_context(cafile=str(pki.ca_cert))
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        data = raw_exchange(gw.hl7_port, frame(adt_a08("TLS-2").encode()), tls=bare)
        if not data:
            raise ssl.SSLError("closed")
    assert [r["control_id"] for r in hl7_list(gw)] == ["TLS-1"]


def test_a_merge_across_issuers_is_refused_and_traced(start_gateway):
    gw = hl7_gateway(start_gateway, site={"issuer_of_patient_id": "CHR-ORLEANS"})
    across = adt_a08("A40-X", event="A40", patient_id="P1", issuer="CHR-ORLEANS").replace(
        "PV1|1|N", "MRG|P9^^^CHU-TOURS^PI")
    fields = ack_fields(send(gw.hl7_port, across))
    assert fields["code"] == "AE" and "across issuers" in fields["err"] and "MRG^1^1" in fields["err"], fields
    within = adt_a08("A40-OK", event="A40", patient_id="P1", issuer="CHR-ORLEANS").replace(
        "PV1|1|N", "MRG|P2^^^CHR-ORLEANS^PI")
    assert ack_fields(send(gw.hl7_port, within))["code"] == "AA"
    no_prior = adt_a08("A47-EMPTY", event="A47").replace("PV1|1|N", "MRG|")
    fields = ack_fields(send(gw.hl7_port, no_prior))
    assert fields["code"] == "AE" and "101" in fields["err"], fields
    assert {r["control_id"] for r in hl7_list(gw, "--failed")} == {"A40-X", "A47-EMPTY"}
    # Traced in the audit trail, under both patients.
    for patient, issuer in (("P1", "CHR-ORLEANS"), ("P9", "CHU-TOURS")):
        out = ctl(gw, "audit", "export", "--patient", patient, "--issuer", issuer, "--format", "json")
        assert out.returncode == 0, out.stderr
        acts = [a for a in json.loads(out.stdout) if a["action"] == "identityUpdateRefused"]
        assert len(acts) == 1 and "across issuers" in acts[0]["outcome_description"], out.stdout
