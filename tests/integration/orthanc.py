"""A real Orthanc (1.10, with its DICOMweb plugin) as a test hub for the uploader.

Self-contained (standard library only) so that bench/ can import it after putting
tests/integration on sys.path:

    o = Orthanc(tmp_path / "hub").start()     # free ports, storage in tmp_path/hub
    o.dicomweb_url                            # "http://127.0.0.1:PORT/dicom-web"
    o.count_instances(); o.instance_uids()    # what the hub holds
    o.instance_file(sop_uid)                  # the Part-10 bytes, fetched by WADO-RS
    o.stop()                                  # SIGTERM, waits for the exit

HTTPS: NOT USABLE WITH THE ORTHANC OF THIS MACHINE (1.10.1 on Debian 12): its civetweb 1.15
resolves SSL_get_peer_certificate, a symbol OpenSSL 3 no longer exports, and the first HTTPS
request segfaults the server (start() then fails with "exited with -11"). Put
faultproxy.FaultProxy(..., tls=TlsServer(...)) in front of a plain Orthanc instead. The
options are kept for an Orthanc built against OpenSSL 1.1:
`Orthanc(dir, ssl_certificate=PEM)` where PEM holds the server certificate then its
private key (Orthanc's `SslCertificate`); `require_client_cert=True` with
`trusted_client_certificates=CA_PEM` sets `SslVerifyPeers` / `SslTrustedClientCertificates`
(civetweb verifies the client certificate against that file: give the CA). The helpers then
talk HTTPS themselves, trusting `helper_ca` and presenting `helper_client_cert` (a PEM with
certificate and key) when required.

`extra_config` is merged (shallow, last wins) into the generated configuration, e.g.
{"StableAge": 2, "LuaScripts": [...], "DicomWeb": {"Servers": {...}}}. A "DicomWeb" dict is
merged into the generated one (which enables the plugin) rather than replacing it.

Restarting on the same ports: `stop()` then `start()` (start reuses the ports chosen the first
time; stop waits for the process to exit, so they are free again).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

ORTHANC = Path(os.environ.get("ORTHANC", "/usr/sbin/Orthanc"))
DICOMWEB_PLUGIN = Path(os.environ.get("ORTHANC_DICOMWEB_PLUGIN",
                                      "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"))

WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancError(RuntimeError):
    pass


def parse_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Parts of a multipart/related body: [(headers with lower-case names, payload)]."""
    params = _content_type_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise OrthancError(f"no boundary in Content-Type {content_type!r}")
    delimiter = b"--" + boundary.encode()
    parts = []
    pieces = body.split(delimiter)
    # pieces[0] is the preamble; the last one starts with "--" (close delimiter).
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        if piece.startswith(b"\r\n"):
            piece = piece[2:]
        head, sep, payload = piece.partition(b"\r\n\r\n")
        if not sep:
            raise OrthancError("multipart part without a header/body separator")
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]  # the CRLF before the next delimiter belongs to it
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        parts.append((headers, payload))
    return parts


def _content_type_params(content_type: str) -> dict[str, str]:
    params = {}
    for item in content_type.split(";")[1:]:
        if "=" in item:
            k, v = item.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return params


class Orthanc:
    """One Orthanc process on 127.0.0.1 with its own ports, storage and index."""

    def __init__(self, workdir: Path, *, http_port: int | None = None,
                 dicom_port: int | None = None, ae_title: str = "ORTHANC",
                 ssl_certificate: Path | None = None,
                 require_client_cert: bool = False,
                 trusted_client_certificates: Path | None = None,
                 helper_ca: Path | None = None,
                 helper_client_cert: Path | None = None,
                 extra_config: dict | None = None,
                 env: dict | None = None,
                 executable: Path = ORTHANC):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = http_port or free_port()
        self.dicom_port = dicom_port or free_port()
        self.ae_title = ae_title
        self.ssl_certificate = Path(ssl_certificate) if ssl_certificate else None
        self.require_client_cert = require_client_cert
        self.trusted_client_certificates = (Path(trusted_client_certificates)
                                            if trusted_client_certificates else None)
        if require_client_cert and not (self.ssl_certificate and self.trusted_client_certificates):
            raise ValueError("require_client_cert needs ssl_certificate and "
                             "trusted_client_certificates")
        self.helper_ca = Path(helper_ca) if helper_ca else None
        self.helper_client_cert = Path(helper_client_cert) if helper_client_cert else None
        self.extra_config = dict(extra_config or {})
        # Extra environment of the Orthanc process, e.g. {"TCP_NODELAY": "1"}: the DCMTK inside
        # Orthanc's DICOM server otherwise stalls ~40 ms per C-STORE (DESIGN.md, test peers).
        self.env = dict(env or {})
        self.executable = Path(executable)
        self.config_path = self.workdir / "orthanc.json"
        self.storage_dir = self.workdir / "storage"
        self.index_dir = self.workdir / "index"
        self.proc: subprocess.Popen | None = None
        self.logs: list[Path] = []
        self._starts = 0

    # ------------------------------------------------------------------ addresses

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certificate else "http"

    @property
    def url(self) -> str:
        """The REST root, e.g. http://127.0.0.1:8042"""
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return self.url + "/dicom-web"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # ------------------------------------------------------------------ process

    def config(self) -> dict:
        cfg = {
            "Name": f"test-hub-{self.http_port}",
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.index_dir),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
            "HttpsVerifyPeers": True,
            "StorageCompression": False,
            "ConcurrentJobs": 2,
            "HttpThreadsCount": 50,
            "KeepAlive": True,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True,
                         "Ssl": self.ssl_certificate is not None},
        }
        if self.ssl_certificate:
            cfg["SslEnabled"] = True
            cfg["SslCertificate"] = str(self.ssl_certificate)
        if self.require_client_cert:
            cfg["SslVerifyPeers"] = True
            cfg["SslTrustedClientCertificates"] = str(self.trusted_client_certificates)
        for key, value in self.extra_config.items():
            if key == "DicomWeb" and isinstance(value, dict):
                cfg["DicomWeb"] = {**cfg["DicomWeb"], **value}
            else:
                cfg[key] = value
        return cfg

    def start(self, timeout: float = 60.0) -> "Orthanc":
        assert not self.alive(), "already running"
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self._starts += 1
        log = self.workdir / f"orthanc.{self._starts}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([str(self.executable), str(self.config_path)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir,
                                         env={**os.environ, **self.env} if self.env else None,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise OrthancError(f"Orthanc exited with {self.proc.returncode} at start\n"
                                   + self.log_tail())
            try:
                status, _, body = self.request("GET", "/system", timeout=2)
                if status == 200 and b"Version" in body:
                    return self
            except (OSError, http.client.HTTPException, ssl.SSLError):
                pass
            time.sleep(0.1)
        self.stop()
        raise OrthancError(f"Orthanc did not answer /system within {timeout}s\n" + self.log_tail())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait for the process to exit (its ports are free afterwards)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        _wait_port_free(self.http_port, 10)
        return self.proc.returncode

    def kill9(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout: float = 60.0) -> "Orthanc":
        self.stop()
        return self.start(timeout)

    def log_text(self) -> str:
        return "".join(f"----- {p.name} -----\n" + p.read_text(errors="replace")
                       for p in self.logs if p.exists())

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_text()[-chars:]

    def __enter__(self) -> "Orthanc":
        return self if self.alive() else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.ssl_certificate:
            return None
        ctx = ssl.create_default_context(cafile=str(self.helper_ca) if self.helper_ca else None)
        if not self.helper_ca:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.helper_client_cert:
            ctx.load_cert_chain(str(self.helper_client_cert))
        return ctx

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        if self.ssl_certificate:
            return http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=timeout,
                                               context=self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 60
                ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body) of one request on a new connection."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get_json(self, path: str, timeout: float = 60):
        status, _, body = self.request("GET", path, headers={"Accept": "application/json"},
                                       timeout=timeout)
        if status != 200:
            raise OrthancError(f"GET {path} -> {status}: {body[:300]!r}")
        return json.loads(body) if body.strip() else None

    # ------------------------------------------------------------------ what the hub holds

    def count_instances(self) -> int:
        return int(self.get_json("/statistics")["CountInstances"])

    def instance_ids(self) -> list[str]:
        """Orthanc's own identifiers of every instance."""
        return self.get_json("/instances")

    def instance_uids(self) -> set[str]:
        """SOP Instance UID of every instance the hub holds."""
        uids = set()
        for iid in self.instance_ids():
            tags = self.get_json(f"/instances/{iid}")["MainDicomTags"]
            uids.add(tags["SOPInstanceUID"])
        return uids

    def study_uids(self) -> set[str]:
        return {self.get_json(f"/studies/{sid}")["MainDicomTags"]["StudyInstanceUID"]
                for sid in self.get_json("/studies")}

    def qido_instances(self, study_uid: str | None = None, **params) -> list[dict]:
        """QIDO-RS instances (DICOM JSON), optionally of one study."""
        path = (f"/dicom-web/studies/{study_uid}/instances" if study_uid
                else "/dicom-web/instances")
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return self.get_json(path) or []

    def locate(self, sop_uid: str) -> tuple[str, str]:
        """(study UID, series UID) of an instance, by QIDO-RS."""
        found = self.qido_instances(SOPInstanceUID=sop_uid)
        if not found:
            raise KeyError(sop_uid)
        ds = found[0]
        return ds["0020000D"]["Value"][0], ds["0020000E"]["Value"][0]

    def instance_file(self, sop_uid: str, study_uid: str | None = None,
                      series_uid: str | None = None) -> bytes:
        """The stored Part-10 file of one instance, by WADO-RS (as stored: transfer-syntax=*).
        Raises KeyError if the hub does not hold it."""
        if not (study_uid and series_uid):
            study_uid, series_uid = self.locate(sop_uid)
        path = f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        status, headers, body = self.request("GET", path, headers={"Accept": WADO_ACCEPT})
        if status == 404:
            raise KeyError(sop_uid)
        if status != 200:
            raise OrthancError(f"WADO-RS {path} -> {status}: {body[:300]!r}")
        parts = parse_multipart(headers.get("content-type", ""), body)
        if len(parts) != 1:
            raise OrthancError(f"WADO-RS {path}: {len(parts)} parts, expected 1")
        return parts[0][1]

    def instance_file_rest(self, sop_uid: str) -> bytes:
        """The same through Orthanc's REST API (/instances/{id}/file), for cross-checks."""
        status, _, body = self.request("POST", "/tools/lookup", body=sop_uid.encode())
        found = [r for r in json.loads(body) if r.get("Type") == "Instance"] if status == 200 else []
        if not found:
            raise KeyError(sop_uid)
        status, _, data = self.request("GET", f"/instances/{found[0]['ID']}/file")
        if status != 200:
            raise OrthancError(f"/instances/{found[0]['ID']}/file -> {status}")
        return data

    def stow(self, files, study_uid: str | None = None) -> tuple[int, bytes]:
        """STOW-RS some Part-10 files directly (for tests of the hub itself)."""
        boundary = "passerelle-test-boundary-7d3f"
        body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                        + Path(f).read_bytes() + b"\r\n" for f in files)
        body += b"--" + boundary.encode() + b"--\r\n"
        path = f"/dicom-web/studies/{study_uid}" if study_uid else "/dicom-web/studies"
        status, _, data = self.request(
            "POST", path, body=body,
            headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                     f'boundary={boundary}',
                     "Accept": "application/dicom+json"})
        return status, data

    def delete_everything(self) -> None:
        for iid in self.get_json("/patients"):
            self.request("DELETE", f"/patients/{iid}")


def _wait_port_free(port: int, timeout: float) -> None:
    """Until nothing listens on the port any more (a connection is refused)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return
        time.sleep(0.1)
