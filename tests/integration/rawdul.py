"""A tiny hand-rolled DICOM Upper Layer client over a raw socket.

Just enough of PS3.8 to build hostile traffic that a well-behaved library
(pynetdicom, DCMTK) refuses to send: oversized PDUs, truncated data sets,
unknown PDU types, aborts in the middle of an instance.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPL_CLASS_UID = "1.2.826.0.1.3680043.10.1234.2"

PDU_ASSOC_RQ, PDU_ASSOC_AC, PDU_ASSOC_RJ = 0x01, 0x02, 0x03
PDU_P_DATA, PDU_RELEASE_RQ, PDU_RELEASE_RP, PDU_ABORT = 0x04, 0x05, 0x06, 0x07


# --------------------------------------------------------------------------
# PDU encoding


def _item(item_type: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(payload)) + payload


def _uid(uid: str) -> bytes:
    b = uid.encode("ascii")
    return b + (b"\x00" if len(b) % 2 else b"")


def _aet(title: str) -> bytes:
    return title.encode("ascii").ljust(16)[:16]


def pdu(pdu_type: int, payload: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(payload)) + payload


def associate_rq(called: str = "PASSERELLE", calling: str = "RAWSCU",
                 contexts: list[tuple[str, list[str]]] | None = None,
                 max_pdu: int = 16384) -> bytes:
    """A-ASSOCIATE-RQ; contexts = [(abstract syntax, [transfer syntaxes])],
    given odd presentation context IDs 1, 3, 5..."""
    contexts = contexts or [(VERIFICATION, [IMPLICIT_LE])]
    body = struct.pack(">HH", 1, 0) + _aet(called) + _aet(calling) + bytes(32)
    body += _item(0x10, APP_CONTEXT.encode())
    for i, (abstract, tss) in enumerate(contexts):
        pc = struct.pack(">BBBB", 2 * i + 1, 0, 0, 0) + _item(0x30, _uid(abstract))
        pc += b"".join(_item(0x40, _uid(ts)) for ts in tss)
        body += _item(0x20, pc)
    user = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, _uid(IMPL_CLASS_UID))
    body += _item(0x50, user)
    return pdu(PDU_ASSOC_RQ, body)


def p_data(pc_id: int, fragment: bytes, *, command: bool, last: bool) -> bytes:
    header = (0x01 if command else 0x00) | (0x02 if last else 0x00)
    pdv = struct.pack(">IBB", len(fragment) + 2, pc_id, header) + fragment
    return pdu(PDU_P_DATA, pdv)


def release_rq() -> bytes:
    return pdu(PDU_RELEASE_RQ, bytes(4))


def abort_pdu() -> bytes:
    return pdu(PDU_ABORT, bytes(4))


# --------------------------------------------------------------------------
# DIMSE command sets (always Implicit VR Little Endian, PS3.7 6.3.1)


def _elem(tag: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", 0x0000, tag, len(value)) + value


def _us(v: int) -> bytes:
    return struct.pack("<H", v)


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(_elem(tag, value) for tag, value in sorted(elements))
    return _elem(0x0000, struct.pack("<I", len(body))) + body


def c_store_rq(sop_class: str, sop_instance: str, message_id: int = 1) -> bytes:
    return command_set([
        (0x0002, sop_class.encode()),
        (0x0100, _us(0x0001)),
        (0x0110, _us(message_id)),
        (0x0700, _us(0)),
        (0x0800, _us(0x0000)),  # a data set follows
        (0x1000, sop_instance.encode()),
    ])


def c_echo_rq(message_id: int = 1) -> bytes:
    return command_set([
        (0x0002, VERIFICATION.encode()),
        (0x0100, _us(0x0030)),
        (0x0110, _us(message_id)),
        (0x0800, _us(0x0101)),  # no data set
    ])


def parse_command(data: bytes) -> dict[int, bytes]:
    """Implicit VR LE group-0000 elements -> {element number: raw value}."""
    out, pos = {}, 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        out[elem] = data[pos + 8: pos + 8 + length]
        pos += 8 + length
    return out


# --------------------------------------------------------------------------
# PDU decoding


@dataclass
class Pdu:
    type: int
    body: bytes

    @property
    def name(self) -> str:
        return {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ",
                4: "P-DATA-TF", 5: "A-RELEASE-RQ", 6: "A-RELEASE-RP",
                7: "A-ABORT"}.get(self.type, f"PDU 0x{self.type:02x}")

    def reject_reason(self) -> tuple[int, int, int]:
        """(result, source, reason) of an A-ASSOCIATE-RJ."""
        assert self.type == PDU_ASSOC_RJ, self.name
        return self.body[1], self.body[2], self.body[3]


@dataclass
class AssociateAc:
    max_pdu: int = 0
    accepted: dict[int, str] = field(default_factory=dict)  # pc id -> ts
    rejected: dict[int, int] = field(default_factory=dict)  # pc id -> reason


def parse_associate_ac(body: bytes) -> AssociateAc:
    ac, pos = AssociateAc(), 68
    while pos + 4 <= len(body):
        itype, _, ilen = struct.unpack_from(">BBH", body, pos)
        item = body[pos + 4: pos + 4 + ilen]
        if itype == 0x21:
            pc_id, reason = item[0], item[2]
            ts = ""
            if len(item) > 8 and item[4] == 0x40:
                (tlen,) = struct.unpack_from(">H", item, 6)
                ts = item[8:8 + tlen].rstrip(b"\x00 ").decode()
            if reason == 0:
                ac.accepted[pc_id] = ts
            else:
                ac.rejected[pc_id] = reason
        elif itype == 0x50:
            upos = 0
            while upos + 4 <= len(item):
                stype, _, slen = struct.unpack_from(">BBH", item, upos)
                if stype == 0x51:
                    (ac.max_pdu,) = struct.unpack_from(">I", item, upos + 4)
                upos += 4 + slen
        pos += 4 + ilen
    return ac


def iter_pdvs(body: bytes):
    """(pc id, message control header, fragment) of each PDV in a P-DATA-TF."""
    pos = 0
    while pos + 6 <= len(body):
        (length,) = struct.unpack_from(">I", body, pos)
        yield body[pos + 4], body[pos + 5], body[pos + 6: pos + 4 + length]
        pos += 4 + length


# --------------------------------------------------------------------------
# the connection


class Closed(Exception):
    """The peer closed the TCP connection."""


class RawAssociation:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ac: AssociateAc | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise Closed(f"connection closed after {len(buf)}/{n} bytes")
            buf += chunk
        return buf

    def recv_pdu(self, timeout: float | None = None) -> Pdu:
        if timeout is not None:
            self.sock.settimeout(timeout)
        ptype, _, length = struct.unpack(">BBI", self._recv_exact(6))
        return Pdu(ptype, self._recv_exact(length))

    def associate(self, **kw) -> AssociateAc:
        self.send(associate_rq(**kw))
        reply = self.recv_pdu()
        if reply.type != PDU_ASSOC_AC:
            raise AssertionError(f"association not accepted: {reply.name} {reply.body[:4].hex()}")
        self.ac = parse_associate_ac(reply.body)
        return self.ac

    def recv_command(self, timeout: float | None = None) -> dict[int, bytes]:
        """Reads P-DATA-TF until a complete command set arrives."""
        data = b""
        while True:
            reply = self.recv_pdu(timeout)
            if reply.type != PDU_P_DATA:
                raise AssertionError(f"expected P-DATA-TF, got {reply.name}")
            for _pc, header, frag in iter_pdvs(reply.body):
                if header & 0x01:
                    data += frag
                    if header & 0x02:
                        return parse_command(data)

    def outcome(self, timeout: float = 10.0) -> str:
        """What the peer does next: 'closed', a PDU name, or 'silence'."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "silence"
                return self.recv_pdu(left).name
        except Closed:
            return "closed"
        except ConnectionResetError:
            return "closed"
        except socket.timeout:
            return "silence"

    def send_dataset(self, pc_id: int, data: bytes, max_pdu: int, *, last: bool = True) -> None:
        chunk = max(max_pdu - 6 - 6, 16)  # PDU header + PDV header
        chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
        for i, frag in enumerate(chunks):
            self.send(p_data(pc_id, frag, command=False,
                             last=last and i == len(chunks) - 1))


def status_of(command: dict[int, bytes]) -> int:
    return struct.unpack("<H", command[0x0900])[0]
