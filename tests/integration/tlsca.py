"""A throw-away PKI for the TLS tests, made with the openssl command line.

    pki = make_pki(tmp_path / "pki")
    pki.ca_cert                 # the test CA (PEM)
    pki.server_cert / server_key / server_pem   # 127.0.0.1 + localhost; server_pem = cert + key
    pki.client_cert / client_key / client_pem   # signed by the test CA
    pki.wrong_ca_cert, pki.wrong_client_cert / wrong_client_key / wrong_client_pem
                                # a client certificate of another CA (refused by the server)
    pki.dual_cert / dual_key    # 127.0.0.1, for server and client authentication
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    server_pem: Path
    client_cert: Path
    client_key: Path
    client_pem: Path
    wrong_ca_cert: Path
    wrong_client_cert: Path
    wrong_client_key: Path
    wrong_client_pem: Path
    # 127.0.0.1 for both uses (serverAuth and clientAuth): a DICOM TLS gateway's certificate,
    # which it also presents when it opens associations (C-MOVE to a storescp +tls).
    dual_cert: Path | None = None
    dual_key: Path | None = None


def _openssl(*args, cwd: Path) -> None:
    out = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} -> {out.returncode}\n{out.stderr}")


def _make_ca(d: Path, name: str, cn: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
             "-keyout", key, "-out", cert, "-subj", f"/O=Passerelle tests/CN={cn}",
             "-config", _minimal_config(d), "-extensions", "v3_ca", cwd=d)
    return cert, key


def _minimal_config(d: Path) -> Path:
    """openssl req needs a config file; the system's may be absent or odd."""
    cfg = d / "openssl.cnf"
    if not cfg.exists():
        cfg.write_text("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"
                       "[v3_ca]\nbasicConstraints = critical, CA:TRUE\n"
                       "keyUsage = critical, keyCertSign, cRLSign\n"
                       "subjectKeyIdentifier = hash\n")
    return cfg


def _make_leaf(d: Path, name: str, cn: str, ca_cert: Path, ca_key: Path,
               server: bool, days: int = 30, client: bool = False) -> tuple[Path, Path, Path]:
    key, csr, cert, pem = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem",
                           d / f"{name}-with-key.pem")
    ext = d / f"{name}.ext"
    lines = ["basicConstraints = critical, CA:FALSE",
             "keyUsage = critical, digitalSignature, keyEncipherment",
             "authorityKeyIdentifier = keyid",
             "subjectKeyIdentifier = hash"]
    if server:
        usage = "serverAuth, clientAuth" if client else "serverAuth"
        lines += [f"extendedKeyUsage = {usage}", "subjectAltName = IP:127.0.0.1, DNS:localhost"]
    else:
        lines += ["extendedKeyUsage = clientAuth"]
    ext.write_text("\n".join(lines) + "\n")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", key,
             "-out", csr, "-subj", f"/O=Passerelle tests/CN={cn}",
             "-config", _minimal_config(d), cwd=d)
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
             "-sha256", "-days", str(days), "-extfile", ext, "-out", cert, cwd=d)
    pem.write_text(cert.read_text() + key.read_text())
    return cert, key, pem


def make_pki(directory: Path) -> Pki:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _make_ca(d, "ca", "Passerelle test CA")
    server_cert, server_key, server_pem = _make_leaf(d, "server", "127.0.0.1", ca_cert, ca_key,
                                                     server=True)
    client_cert, client_key, client_pem = _make_leaf(d, "client", "site 213 csorl45000",
                                                     ca_cert, ca_key, server=False)
    wrong_ca_cert, wrong_ca_key = _make_ca(d, "wrong-ca", "Some other CA")
    wrong_cert, wrong_key, wrong_pem = _make_leaf(d, "wrong-client", "site 213 csorl45000",
                                                  wrong_ca_cert, wrong_ca_key, server=False)
    dual_cert, dual_key, _ = _make_leaf(d, "dual", "127.0.0.1", ca_cert, ca_key, server=True,
                                        client=True)
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return Pki(d, ca_cert, ca_key, server_cert, server_key, server_pem, client_cert, client_key,
               client_pem, wrong_ca_cert, wrong_cert, wrong_key, wrong_pem, dual_cert, dual_key)


def not_after(cert: Path) -> str:
    """The certificate's notAfter as openssl prints it (e.g. 'Dec 23 21:30:00 2026 GMT')."""
    out = subprocess.run([OPENSSL, "x509", "-noout", "-enddate", "-in", str(cert)],
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip().split("=", 1)[1]
