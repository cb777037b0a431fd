"""HL7 v2 messages and MLLP helpers for the listener's tests and bench/hl7.

Messages are built as text with CR segment separators; they are sent with the real client
of the `hl7` package (`hl7.client.MLLPClient`) or, for framing faults, with raw sockets.
"""

from __future__ import annotations

import socket
import ssl
import time

import hl7
from hl7.client import MLLPClient

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def adt_a08(control_id: str, *, patient_id: str = "P123", issuer: str = "CHRU-TOURS",
            family: str = "DUPONT", given: str = "JEAN", birth: str = "19700101", sex: str = "M",
            sender: tuple[str, str] = ("PAS", "CHRU"), version: str = "2.5",
            charset: str | None = None, event: str = "A08", message_code: str = "ADT",
            processing: str = "P") -> str:
    msh18 = f"||||||{charset}" if charset else ""
    return "\r".join([
        f"MSH|^~\\&|{sender[0]}|{sender[1]}|PASSERELLE|SITE|20261207101500||{message_code}^{event}^ADT_A01|"
        f"{control_id}|{processing}|{version}{msh18}",
        f"EVN|{event}|20261207101500",
        f"PID|1||{patient_id}^^^{issuer}^PI||{family}^{given}||{birth}|{sex}",
        "PV1|1|N",
    ]) + "\r"


def client(port: int, encoding: str = "utf-8", timeout: float = 10) -> MLLPClient:
    c = MLLPClient("127.0.0.1", port, encoding=encoding)
    c.socket.settimeout(timeout)
    return c


def send(port: int, message: str | bytes, encoding: str = "utf-8") -> hl7.Message:
    """Sends one message with the hl7 package's MLLP client; returns the parsed ACK."""
    with client(port, encoding) as c:
        return parse_ack(c.send_message(message), encoding)


def parse_ack(framed: bytes, encoding: str = "utf-8") -> hl7.Message:
    """The hl7 client returns the framed bytes of one read: the ACK is short, one read."""
    return hl7.parse(unframe(framed).decode(encoding))


def ack_fields(ack: hl7.Message) -> dict:
    """MSA-1, MSA-2, the ERR segment's text, and MSH-9, of a parsed ACK."""
    msa = ack.segment("MSA")
    try:
        err = str(ack.segment("ERR"))
    except KeyError:
        err = ""
    return {"code": str(msa[1]), "control_id": str(msa[2]), "err": err, "type": str(ack.segment("MSH")[9])}


def raw_exchange(port: int, payload: bytes, timeout: float = 5, tls: ssl.SSLContext | None = None,
                 frames: int = 1) -> bytes:
    """Sends raw bytes, returns what comes back until the peer closes, `frames` complete
    frames, or the timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname="127.0.0.1")
    try:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
            if data.endswith(EB + CR) and data.count(EB + CR) >= frames:
                break
        return data
    finally:
        s.close()


def frame(message: bytes) -> bytes:
    return SB + message + EB + CR


def unframe(data: bytes) -> bytes:
    assert data.startswith(SB) and data.endswith(EB + CR), data[:80]
    return data[1:-2]
