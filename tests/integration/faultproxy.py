"""A TCP proxy in front of an HTTP server, with faults switched on and off at runtime.

    proxy = FaultProxy("127.0.0.1", orthanc.http_port).start()
    proxy.url                      # "http://127.0.0.1:PORT" (https with tls=)
    proxy.forward()                # (alias `pass_`) plain forwarding, every fault off
    proxy.cut_after(200_000, times=2)   # the next 2 requests longer than that: the connection
                                   # is reset once 200 000 bytes of the request went to the server
    proxy.drop_responses(times=1)  # the next POST reaches the server whole, but the
                                   # connection is reset instead of returning its response
    proxy.http_503(3.0)            # for 3 s: every request is read whole and answered
                                   # "503 Service Unavailable" + Connection: close, unforwarded
    proxy.delay(0.5)               # every response is held 0.5 s before it is forwarded
    proxy.down()                   # the listening socket is closed (connections refused)
                                   # and every open connection is reset; proxy.up() reopens it
    proxy.stats()                  # counters: connections, requests, forwarded, cut, ...
    proxy.requests / proxy.posts() # (request line, bytes, "forwarded" | "503" | "cut")

It understands just enough HTTP/1.1 to find where each request ends (Content-Length or
chunked), so faults apply per request, including on kept-alive connections (each fault is
decided when a request begins). Responses are forwarded as they come.

TLS (the test hub's own HTTPS is unusable here: Orthanc 1.10.1's civetweb 1.15 resolves
SSL_get_peer_certificate, which OpenSSL 3 no longer exports, and segfaults on the first HTTPS
request): `FaultProxy(host, port, tls=TlsServer(cert, key, client_ca=CA, require_client_cert=True))`
terminates TLS (client certificates verified against `client_ca`) and forwards plain HTTP.
Handshake failures are counted and their messages kept in `tls_errors`.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

RESPONSE_503 = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 20\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                b"hub is overloaded.\r\n")


@dataclass
class TlsServer:
    cert: Path
    key: Path | None = None              # None: the key is in `cert`
    client_ca: Path | None = None        # verify client certificates against this
    require_client_cert: bool = False

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        if self.client_ca:
            ctx.load_verify_locations(str(self.client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else (
            ssl.CERT_OPTIONAL if self.client_ca else ssl.CERT_NONE)
        return ctx


class _RequestTracker:
    """Incremental parser of a client's HTTP/1.1 request stream: knows where each request
    begins and ends (no pipelining assumed, but handled)."""

    def __init__(self):
        self.state = "idle"       # idle | head | body | chunk-size | chunk-data | trailer
        self.buf = b""
        self.remaining = 0
        self.head = b""
        self.request_line = ""   # of the request being received, once its head is complete

    def feed(self, data: bytes) -> list[tuple[str, int]]:
        """Consumes bytes; returns events [("start", offset) | ("end", offset)], offsets
        into `data` (start: the request's first byte; end: just after its last)."""
        events = []
        i = 0
        n = len(data)
        while i < n:
            if self.state == "idle":
                events.append(("start", i))
                self.state, self.buf, self.head = "head", b"", b""
            if self.state == "head":
                before = len(self.head)
                self.head += data[i:]
                k = self.head.find(b"\r\n\r\n")
                if k < 0:
                    i = n
                    if len(self.head) > 1 << 20:
                        raise ValueError("request head too long")
                    continue
                i += k + 4 - before
                self.request_line = self.head[:k].decode("latin-1").split("\r\n")[0]
                head = self.head[:k].decode("latin-1").lower().split("\r\n")
                fields = {}
                for line in head[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        fields[name.strip()] = value.strip()
                if "chunked" in fields.get("transfer-encoding", ""):
                    self.state, self.buf = "chunk-size", b""
                else:
                    self.remaining = int(fields.get("content-length", "0") or 0)
                    self.state = "body"
                    if self.remaining == 0:
                        self.state = "idle"
                        events.append(("end", i))
                continue
            if self.state == "body":
                take = min(self.remaining, n - i)
                self.remaining -= take
                i += take
                if self.remaining == 0:
                    self.state = "idle"
                    events.append(("end", i))
                continue
            if self.state == "chunk-size":
                k = data.find(b"\r\n", i)
                if k < 0:
                    self.buf += data[i:]
                    i = n
                    continue
                line = self.buf + data[i:k]
                self.buf = b""
                i = k + 2
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.state = "trailer"
                else:
                    self.remaining = size + 2  # the data and its CRLF
                    self.state = "chunk-data"
                continue
            if self.state == "chunk-data":
                take = min(self.remaining, n - i)
                self.remaining -= take
                i += take
                if self.remaining == 0:
                    self.state = "chunk-size"
                continue
            if self.state == "trailer":
                k = data.find(b"\r\n", i)
                if k < 0:
                    self.buf += data[i:]
                    i = n
                    continue
                line = self.buf + data[i:k]
                self.buf = b""
                i = k + 2
                if line == b"":
                    self.state = "idle"
                    events.append(("end", i))
                continue
        return events


def _reset(sock: socket.socket | None) -> None:
    """Close with RST (SO_LINGER 0)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int = 0,
                 tls: TlsServer | None = None):
        self.target = (target_host, target_port)
        self.port = port
        self.tls = tls
        self._ssl_ctx = tls.context() if tls else None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set["_Connection"] = set()
        self._closed = False
        # fault settings (under _lock)
        self._cut_bytes = 0
        self._cut_times = 0
        self._drop_times = 0
        self._drop_method: str | None = "POST"
        self._503_until = 0.0
        self._delay = 0.0
        self._reset_on_accept = False
        # counters
        self.counters = dict(connections=0, requests=0, forwarded=0, completed=0,
                             answered_503=0, cut=0, dropped_responses=0, delayed=0,
                             upstream_refused=0, reset_on_accept=0, tls_failures=0,
                             bytes_up=0, bytes_down=0)
        self.tls_errors: list[str] = []
        # (request line, request bytes incl. head, outcome) of every request seen; outcome:
        # "forwarded", "503", "cut"
        self.requests: list[tuple[str, int, str]] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._listen()
        return self

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self._listener = s
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(s,),
                                               name=f"faultproxy-{self.port}", daemon=True)
        self._accept_thread.start()

    def stop(self) -> None:
        self._closed = True
        self._close_listener()
        self.reset_all()

    def __enter__(self) -> "FaultProxy":
        return self.start() if self._listener is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _close_listener(self) -> None:
        s, self._listener = self._listener, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        t, self._accept_thread = self._accept_thread, None
        if t is not None:
            t.join(5)

    def reset_all(self) -> int:
        """Resets every open connection; returns how many."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.abort()
        return len(conns)

    # ------------------------------------------------------------------ controls

    def forward(self) -> None:
        """Plain forwarding: every fault off (the proxy stays up / is brought up)."""
        with self._lock:
            self._cut_bytes = self._cut_times = self._drop_times = 0
            self._503_until = 0.0
            self._delay = 0.0
            self._reset_on_accept = False
        if self._listener is None and not self._closed:
            self._listen()

    pass_ = forward

    def cut_after(self, nbytes: int, times: int = 1) -> None:
        """The next `times` requests longer than `nbytes`: once `nbytes` of the request
        (head included) were forwarded, both connections are reset (the server gets a
        truncated request, the client an RST). Shorter requests pass untouched."""
        with self._lock:
            self._cut_bytes, self._cut_times = nbytes, times

    def drop_responses(self, times: int = 1, method: str | None = "POST") -> None:
        """The next `times` requests (of `method`; None: any) are forwarded whole; their
        responses are replaced by a connection reset (the server did the work, the client
        never hears of it)."""
        with self._lock:
            self._drop_times, self._drop_method = times, method

    def http_503(self, duration: float) -> None:
        """For `duration` s, every request is answered 503 + Connection: close, unforwarded."""
        with self._lock:
            self._503_until = time.monotonic() + duration

    def delay(self, seconds: float) -> None:
        """Every response is held `seconds` before its first byte is forwarded (0: off)."""
        with self._lock:
            self._delay = seconds

    def down(self, refuse: bool = True) -> None:
        """The hub is unreachable: with `refuse`, the listening socket is closed
        (ECONNREFUSED); otherwise connections are accepted and reset at once. Open
        connections are reset either way."""
        with self._lock:
            self._reset_on_accept = not refuse
        if refuse:
            self._close_listener()
        self.reset_all()

    def up(self) -> None:
        """Listening again on the same port (faults other than down() are kept)."""
        with self._lock:
            self._reset_on_accept = False
        if self._listener is None:
            self._listen()

    def stats(self) -> dict:
        with self._lock:
            return dict(self.counters, open_connections=len(self._conns))

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def _decide(self) -> dict:
        """The faults that apply to a request beginning now."""
        with self._lock:
            self.counters["requests"] += 1
            decision = {"503": time.monotonic() < self._503_until, "cut": None,
                        "drop": False, "delay": self._delay}
            if not decision["503"] and self._cut_times > 0:
                decision["cut"] = self._cut_bytes
            return decision

    def _claim_cut(self) -> bool:
        """A request reached its cut point: is a cut still due (another connection may have
        taken the last one)?"""
        with self._lock:
            if self._cut_times > 0:
                self._cut_times -= 1
                self.counters["cut"] += 1
                return True
            return False

    def _claim_drop(self, request_line: str) -> bool:
        with self._lock:
            method = request_line.split(" ", 1)[0]
            if self._drop_times > 0 and (self._drop_method is None
                                         or method == self._drop_method):
                self._drop_times -= 1
                return True
            return False

    def _log_request(self, line: str, nbytes: int, outcome: str) -> None:
        with self._lock:
            self.requests.append((line, nbytes, outcome))

    def posts(self) -> list[tuple[str, int, str]]:
        """The POST requests seen (STOW-RS)."""
        with self._lock:
            return [r for r in self.requests if r[0].startswith("POST ")]

    # ------------------------------------------------------------------ accepting

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.counters["connections"] += 1
                reset = self._reset_on_accept
            if reset:
                self._count("reset_on_accept")
                _reset(client)
                continue
            conn = _Connection(self, client)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=conn.run, daemon=True,
                             name=f"faultproxy-{self.port}-conn").start()


class _Connection:
    def __init__(self, proxy: FaultProxy, client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.aborted = False
        self.graceful = False      # close with FIN (else RST)
        self.tracker: _RequestTracker | None = None
        self.req: dict | None = None   # faults of the latest request (the one being
                                       # received, or whose response is awaited)

    def abort(self) -> None:
        self.aborted = True
        _reset(self.client)
        _reset(self.upstream)

    def run(self) -> None:
        try:
            self._run()
        except (OSError, ValueError):
            self.graceful = False
        finally:
            if self.graceful and not self.aborted:
                for sock in (self.client, self.upstream):
                    if sock is not None:
                        try:
                            sock.close()
                        except OSError:
                            pass
            else:
                _reset(self.client)
                _reset(self.upstream)
            with self.proxy._lock:
                self.proxy._conns.discard(self)

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        data = sock.recv(262144)
        if isinstance(sock, ssl.SSLSocket):
            while data and sock.pending():
                data += sock.recv(sock.pending())
        return data

    def _run(self) -> None:
        p = self.proxy
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if p._ssl_ctx is not None:
            self.client.settimeout(10)
            try:
                self.client = p._ssl_ctx.wrap_socket(self.client, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with p._lock:
                    p.counters["tls_failures"] += 1
                    p.tls_errors.append(str(e))
                return
            self.client.settimeout(None)
        try:
            self.upstream = socket.create_connection(p.target, timeout=10)
            self.upstream.settimeout(None)
            self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            p._count("upstream_refused")
            return  # the client sees its connection reset
        tracker = self.tracker = _RequestTracker()
        while not self.aborted:
            pending = isinstance(self.client, ssl.SSLSocket) and self.client.pending()
            readable = [self.client] if pending else \
                select.select([self.client, self.upstream], [], [], 1.0)[0]
            if self.client in readable:
                data = self._recv(self.client)
                if not data:
                    self.graceful = True  # the client closed: so do we
                    return
                pos = 0
                for kind, offset in tracker.feed(data):
                    if not self._up(data[pos:offset]):
                        return
                    pos = offset
                    if kind == "start":
                        if self.req is not None and self.req["complete"]:
                            p._count("completed")
                        self.req = p._decide()
                        self.req.update(sent=0, complete=False, delayed=False)
                    else:
                        self.req["complete"] = True
                        if self.req["503"]:
                            p._count("answered_503")
                            p._log_request(tracker.request_line, self.req["sent"], "503")
                            self.client.sendall(RESPONSE_503)
                            self.graceful = True
                            return
                        p._count("forwarded")
                        p._log_request(tracker.request_line, self.req["sent"], "forwarded")
                        self.req["drop"] = p._claim_drop(tracker.request_line)
                if not self._up(data[pos:]):
                    return
            if self.upstream in readable:
                data = self._recv(self.upstream)
                if not data:
                    self.graceful = True  # the server closed (after its response)
                    return
                req = self.req
                if req is not None:
                    if req["drop"]:
                        p._count("dropped_responses")
                        return  # reset both: the client never gets the response
                    if req["delay"] and not req["delayed"]:
                        req["delayed"] = True
                        p._count("delayed")
                        time.sleep(req["delay"])
                        if self.aborted:
                            return
                p._count("bytes_down", len(data))
                self.client.sendall(data)

    def _up(self, segment: bytes) -> bool:
        """Forwards (or swallows) request bytes; False when the connection is to be cut."""
        if not segment:
            return True
        p, req = self.proxy, self.req
        if req is not None and req["503"]:
            req["sent"] += len(segment)
            return True  # read and dropped: the request is answered 503 when complete
        cut = req.get("cut") if req is not None else None
        if cut is not None and req["sent"] + len(segment) >= cut and p._claim_cut():
            keep = max(cut - req["sent"], 0)
            if keep:
                self.upstream.sendall(segment[:keep])
                p._count("bytes_up", keep)
            p._log_request(self.tracker.request_line or "(head cut)", cut, "cut")
            return False
        self.upstream.sendall(segment)
        p._count("bytes_up", len(segment))
        if req is not None:
            req["sent"] += len(segment)
        return True
