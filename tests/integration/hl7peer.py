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


def adt(control_id: str, event: str, *, patient_id: str, issuer: str, family: str = "", given: str = "",
        birth: str = "", sex: str = "", prior: str | None = None, prior_issuer: str | None = None,
        ins: str | None = None, status: str = "", charset: str | None = "UNICODE UTF-8",
        sender: tuple[str, str] = ("PAS", "CHR")) -> str:
    """An identity update from the PAS (IHE PAM France): A08/A31 demographics, A47 change of
    identifier and A40 merge (with MRG-1 `prior`); the INS as a PID-3 repetition with its OID,
    PID-32 the identity's status (VALI: qualified)."""
    msh18 = f"||||||{charset}" if charset else ""
    ids = f"{patient_id}^^^{issuer}^PI" + (f"~{ins}^^^&1.2.250.1.213.1.4.8&ISO^INS" if ins else "")
    pid = ["PID", "1", "", ids, "", f"{family}^{given}^^^^^L" if family else "", "", birth, sex] + [""] * 23 + [status]
    segments = [
        f"MSH|^~\\&|{sender[0]}|{sender[1]}|PASSERELLE|SITE|20261207101500||ADT^{event}^ADT_A01|"
        f"{control_id}|P|2.5{msh18}",
        f"EVN|{event}|20261207101500",
        "|".join(pid).rstrip("|"),
    ]
    if prior is not None:
        segments.append(f"MRG|{prior}^^^{prior_issuer or issuer}^PI")
    return "\r".join(segments) + "\r"


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


def oru_r01(control_id: str, *, patient_id: str, issuer: str, study_uid: str | None = None,
            accession: str = "ACC0001", status: str = "F", lines: list[str] | None = None,
            pdf: bytes | None = None, sender: tuple[str, str] = ("RIS", "CHRU"), version: str = "2.5",
            charset: str | None = "UNICODE UTF-8") -> str:
    """A radiology report as the RIS sends it: the report text in OBX TX lines (or a PDF in an
    OBX of type ED, base64), OBR-3 the filler order number (the accession number), ZDS-1 the
    Study Instance UID when known (IHE Radiology), OBR-32 the interpreter, OBX-16 the verifier."""
    import base64
    msh18 = f"||||||{charset}" if charset else ""
    segments = [
        f"MSH|^~\\&|{sender[0]}|{sender[1]}|PASSERELLE|SITE|20261207110000||ORU^R01^ORU_R01|{control_id}|P|{version}{msh18}",
        f"PID|1||{patient_id}^^^{issuer}^PI||DUPONT^JEAN||19700101|F",
        f"OBR|1|PL{accession}|{accession}|CTTHO^Scanner thoracique|||20240115101500|||||||||||||||20240115120000"
        f"|||{status}|||||||MD001&MARTIN&Claire",
    ]
    if study_uid:
        segments.append(f"ZDS|{study_uid}^PASSERELLE^Application^DICOM")
    if pdf is not None:
        segments.append("OBX|1|ED|PDF^Report||^application^pdf^Base64^" + base64.b64encode(pdf).decode()
                        + f"||||||{status}|||||MD001^MARTIN^Claire")
    else:
        for i, line in enumerate(lines or ["Pas d'anomalie."], start=1):
            segments.append(f"OBX|{i}|TX|GDT^Report||{line}||||||{status}|||||MD001^MARTIN^Claire")
    return "\r".join(segments) + "\r"


def minimal_pdf(text: str = "Compte rendu") -> bytes:
    """A small valid PDF (one page, one line of text), offsets computed."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode()
    objects[3] = b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out
