"""A TCP proxy for DICOM associations that counts C-STORE sub-operations, per SOP Instance UID.

Put between a C-MOVE SCP's sub-operation associations (the PACS's C-STORE SCU) and the move
destination (passerelled's storage SCP): the PACS's `DicomModalities` names the destination
AE at the proxy's port, the proxy forwards every byte to the real port unchanged.

    proxy = DimseCountingProxy(gw.port).start()      # listens on a free port
    pacs.set_move_destination(gw.ae_title, proxy.port)
    ...
    proxy.stored_count()        # successful C-STORE-RSP (Status 0x0000) seen, in total
    proxy.stored[uid]           # ... for one SOP Instance UID (a Counter)
    proxy.duplicates()          # UIDs acknowledged more than once
    proxy.slow_down(0.05)       # hold each C-STORE-RQ 50 ms before forwarding it
    proxy.hold() / release()    # stop / restart forwarding C-STORE-RQs (a stuck PACS)
    proxy.stop()

Both byte streams are parsed as PDUs (PS3.8 9.3): only P-DATA-TF PDVs whose message control
header says "command" are gathered (per presentation context, until the last fragment) and
decoded as group-0000 command sets in Implicit VR Little Endian (PS3.7 6.3.1): Command Field
(0000,0100), Affected SOP Instance UID (0000,1000), Status (0000,0900). Data set fragments are
forwarded without being kept. Each PDU is forwarded whole, once it has been read completely.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections import Counter

import rawdul

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
STATUS_SUCCESS = 0x0000


def decode_command(data: bytes) -> dict:
    """{"field": Command Field, "sop": Affected SOP Instance UID or None, "status": Status or
    None, "message_id": ..} of a command set (Implicit VR LE)."""
    raw = rawdul.parse_command(data)

    def us(elem):
        v = raw.get(elem)
        return struct.unpack("<H", v[:2])[0] if v and len(v) >= 2 else None

    sop = raw.get(0x1000)
    return {"field": us(0x0100),
            "sop": sop.rstrip(b"\x00 ").decode("ascii", "replace") if sop is not None else None,
            "status": us(0x0900),
            "message_id": us(0x0110) if 0x0110 in raw else us(0x0120)}


class _PduReader:
    """Splits a byte stream into PDUs and gathers the command sets of P-DATA-TF PDVs."""

    def __init__(self):
        self.buf = bytearray()
        self.commands: dict[int, bytes] = {}  # presentation context id -> fragments so far

    def feed(self, data: bytes) -> list[tuple[bytes, list[dict]]]:
        """[(whole PDU bytes, [decoded command sets that ended in it])]"""
        self.buf += data
        out = []
        while len(self.buf) >= 6:
            ptype, _, length = struct.unpack_from(">BBI", self.buf, 0)
            if len(self.buf) < 6 + length:
                break
            pdu = bytes(self.buf[:6 + length])
            del self.buf[:6 + length]
            commands = []
            if ptype == rawdul.PDU_P_DATA:
                for pc_id, header, fragment in rawdul.iter_pdvs(pdu[6:]):
                    if header & 0x01:
                        self.commands[pc_id] = self.commands.get(pc_id, b"") + fragment
                        if header & 0x02:
                            commands.append(decode_command(self.commands.pop(pc_id)))
            out.append((pdu, commands))
        return out


class DimseCountingProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, port: int = 0):
        self.target = (target_host, target_port)
        self.port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._closed = False
        self._delay = 0.0
        self._go = threading.Event()
        self._go.set()
        # what was seen
        self.stored: Counter = Counter()          # SOP UID -> successful C-STORE-RSPs
        self.requested: Counter = Counter()       # SOP UID -> C-STORE-RQs forwarded
        self.responses: list[tuple[str | None, int | None]] = []  # (SOP UID, status) in order
        self.associations = 0
        self.upstream_refused = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "DimseCountingProxy":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self._listener = s
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"dimseproxy-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closed = True
        self._go.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "DimseCountingProxy":
        return self.start() if self._listener is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ controls

    def slow_down(self, seconds: float) -> None:
        """Each C-STORE-RQ is held `seconds` before it is forwarded (0: off)."""
        with self._lock:
            self._delay = seconds

    def hold(self) -> None:
        """C-STORE-RQs are no longer forwarded (the association stays open) until release()."""
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    # ------------------------------------------------------------------ what was seen

    def stored_count(self) -> int:
        with self._lock:
            return sum(self.stored.values())

    def stored_uids(self) -> set[str]:
        with self._lock:
            return set(self.stored)

    def requested_count(self) -> int:
        with self._lock:
            return sum(self.requested.values())

    def duplicates(self) -> dict[str, int]:
        """SOP UIDs with more than one successful C-STORE-RSP -> how many."""
        with self._lock:
            return {uid: n for uid, n in self.stored.items() if n > 1}

    def failures(self) -> list[tuple[str | None, int | None]]:
        with self._lock:
            return [(uid, st) for uid, st in self.responses if st != STATUS_SUCCESS]

    def snapshot(self) -> dict:
        with self._lock:
            return {"associations": self.associations, "requested": sum(self.requested.values()),
                    "stored": sum(self.stored.values()), "responses": len(self.responses)}

    # ------------------------------------------------------------------ forwarding

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except (OSError, AttributeError):
                return
            with self._lock:
                self.associations += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True,
                             name=f"dimseproxy-{self.port}-conn").start()

    def _seen(self, direction: str, command: dict) -> None:
        with self._lock:
            if direction == "up" and command["field"] == C_STORE_RQ and command["sop"]:
                self.requested[command["sop"]] += 1
            elif direction == "down" and command["field"] == C_STORE_RSP:
                self.responses.append((command["sop"], command["status"]))
                if command["status"] == STATUS_SUCCESS and command["sop"]:
                    self.stored[command["sop"]] += 1

    def _before_store(self) -> bool:
        """Waits as set by slow_down / hold; False when the proxy is stopping."""
        with self._lock:
            delay = self._delay
        if delay:
            time.sleep(delay)
        while not self._go.wait(0.2):
            if self._closed:
                return False
        return not self._closed

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                with self._lock:
                    self.upstream_refused += 1
                return
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.update((client, upstream))
            readers = {client: ("up", upstream, _PduReader()),
                       upstream: ("down", client, _PduReader())}
            while not self._closed:
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in readable:
                    direction, peer, reader = readers[sock]
                    data = sock.recv(262144)
                    if not data:
                        return
                    for pdu, commands in reader.feed(data):
                        for command in commands:
                            if direction == "up" and command["field"] == C_STORE_RQ:
                                if not self._before_store():
                                    return
                            self._seen(direction, command)
                        peer.sendall(pdu)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    with self._lock:
                        self._conns.discard(s)
                    try:
                        s.close()
                    except OSError:
                        pass
