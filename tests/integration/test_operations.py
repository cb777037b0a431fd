"""Operating the daemon: status socket, SIGTERM during a transfer, configuration errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import harness
from harness import (check_spool_integrity, current_by_sop, parse_storescu_output, sop_uid, spool_list,
                     storescu, storescu_popen, wait_until)


def ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(harness.passerellectl_path()), *args], capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"passerellectl {' '.join(args)} -> {out.returncode}\n{out.stderr}")
    return out


def ask(socket_path: Path, payload: bytes) -> list[dict]:
    """Sends raw bytes to the status socket and returns the JSON lines answered."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(socket_path))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.decode().splitlines() if line]


def test_status_queue_and_metrics_describe_the_spool(gateway, ct500):
    assert len(storescu(ct500[:20], gateway.port, aec=gateway.ae_title).acked) == 20
    status = json.loads(ctl("status", "--json", "--config", str(gateway.config_path)).stdout)
    assert status["listening"] == [{"ae_title": gateway.ae_title, "bind": "127.0.0.1", "port": gateway.port}]
    assert status["spool"]["states"]["current"]["instances"] == 20
    assert status["spool"]["states"]["current"]["bytes"] == sum(r["size"] for r in spool_list(gateway.spool))
    assert status["spool"]["below_minimum_free"] is False
    assert status["associations"]["active"] == 0

    readable = ctl("status", "--config", str(gateway.config_path)).stdout
    assert "20 instances (" in readable and "destinations: none" in readable and f"AE {gateway.ae_title}" in readable

    queue = json.loads(ctl("queue", "--json", "--config", str(gateway.config_path)).stdout)
    assert len(queue) == 1 and queue[0]["instances"] == 20
    assert queue[0]["patient_id"] == "CT500"
    assert "Martin" not in json.dumps(queue), "queue must carry identifiers, not names"

    metrics = ctl("metrics", "--config", str(gateway.config_path)).stdout
    assert 'passerelle_instances_received_total{outcome="stored"} 20' in metrics
    assert 'passerelle_associations_total{outcome="accepted"}' in metrics


def test_malformed_status_requests_get_errors_and_harm_nothing(gateway):
    sock = gateway.spool / "status.sock"
    assert oct(sock.stat().st_mode & 0o777) == "0o660"
    answers = ask(sock, b'not json\n{"command":"launch"}\n{"command":"retry"}\n{"nope":1}\n\xff\xfe\n'
                        b'{"command":"status"}\n')
    codes = [a.get("error", {}).get("code") for a in answers]
    assert codes[:5] == ["bad_request", "unknown_command", "bad_request", "bad_request", "bad_request"], answers
    assert answers[5]["ok"] is True
    # A line longer than the limit is refused and the connection closed, without buffering more.
    answers = ask(sock, b"x" * 70_000)
    assert answers and answers[0]["error"]["code"] == "bad_request"
    assert harness.pn_echo(gateway.port, aec=gateway.ae_title) == 0x0000


def test_sigterm_during_a_transfer_loses_nothing_acknowledged(start_gateway, ct500, tmp_path):
    gw = start_gateway()
    log = tmp_path / "storescu.log"
    proc = storescu_popen(ct500, gw.port, log, aec=gw.ae_title)
    assert wait_until(lambda: sum(r == "Success" for r in parse_storescu_output(log.read_text()).values()) >= 50,
                      120, interval=0.02)
    # The running association goes on for the grace period, then is aborted; the daemon exits 0.
    assert gw.terminate() == 0, gw.log_tail()
    proc.wait(60)
    acked = [Path(f) for f, r in parse_storescu_output(log.read_text()).items() if r == "Success"]
    # every listed instance's bytes ([offset, offset + size) of its file) hash to its sha256
    # and parse completely, no store/ file is unlisted, no temporary file is left in tmp/
    by_sop = check_spool_integrity(gw.spool)
    assert {sop_uid(f) for f in acked} <= set(by_sop)
    assert "stopping: no new associations" in gw.log_text()


def test_invalid_configuration_is_refused_with_file_and_line(tmp_path):
    config = tmp_path / "passerelle.toml"
    config.write_text('[dicom]\nport = 11112\nmax_pdu_lenght = 4096\n')
    out = subprocess.run([str(harness.passerelled_path()), "--config", str(config)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 78, out.stderr
    assert f"{config}:3: unknown key 'max_pdu_lenght' in [dicom]" in out.stderr
    assert "did you mean 'max_pdu_length'?" in out.stderr
    check = ctl("config", "check", "--config", str(config), check=False)
    assert check.returncode == 78 and f"{config}:3:" in check.stderr


def test_a_port_in_use_is_a_clear_error(gateway, tmp_path):
    other = harness.Gateway(tmp_path / "other", port=gateway.port)
    other.config_path.write_text(other.config.toml())
    out = subprocess.run([str(harness.passerelled_path()), "--config", str(other.config_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert f"cannot listen on 127.0.0.1:{gateway.port}" in out.stderr, out.stderr


def test_sighup_reloads_the_allow_list_without_dropping_associations(start_gateway):
    gw = start_gateway(allowed_calling_aets=["CT1"])
    assert harness.association_rejection(gw.port, aet="MR2", aec=gw.ae_title) == (1, 1, 3)
    held = harness.pn_associate(gw.port, aet="CT1", aec=gw.ae_title)
    assert held.is_established

    gw.config.allowed_calling_aets = ["CT1", "MR2"]
    gw.config_path.write_text(gw.config.toml())
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in gw.log_text(), 10)
    assert "dicom.allowed_calling_aets" in gw.log_text()
    assert harness.pn_echo(gw.port, aet="MR2", aec=gw.ae_title) == 0x0000
    assert held.is_established and held.send_c_echo().Status == 0x0000, "the open association survives"
    held.release()

    # A broken file is reported and the running configuration kept.
    gw.config_path.write_text("[dicom]\nport = \"eleven\"\n")
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration not reloaded" in gw.log_text(), 10)
    assert "passerelle.toml:2: dicom.port: expected an integer" in gw.log_text()
    assert harness.pn_echo(gw.port, aet="MR2", aec=gw.ae_title) == 0x0000


def test_passerellectl_echo_and_send(gateway, ct500):
    peer = f"{gateway.ae_title}@127.0.0.1:{gateway.port}"
    out = ctl("echo", peer)
    assert "C-ECHO" in out.stdout and "0x0000" in out.stdout
    rejected = ctl("echo", f"NOBODY@127.0.0.1:{gateway.port}", check=False)
    assert rejected.returncode == 3 and "called AE title not recognized" in rejected.stderr
    unreachable = ctl("echo", f"X@127.0.0.1:{harness.free_port()}", "--timeout", "5", check=False)
    assert unreachable.returncode == 2 and "cannot connect" in unreachable.stderr

    sent = ctl("send", *map(str, ct500[:5]), "--to", peer, "--aet", "IT_TEST")
    assert "5 of 5 sent" in sent.stdout
    records = current_by_sop(spool_list(gateway.spool))
    assert {sop_uid(f) for f in ct500[:5]} <= set(records)
    assert all(records[sop_uid(f)]["calling_ae_title"] == "IT_TEST" for f in ct500[:5])
    assert ctl("send", "--to", peer, "/nonexistent.dcm", check=False).returncode != 0


def test_systemd_notifications_in_order(tmp_path):
    """Under systemd (NOTIFY_SOCKET, WATCHDOG_USEC): READY=1 once listening, STATUS= lines,
    WATCHDOG=1 pings, STOPPING=1 on SIGTERM."""
    gw = harness.Gateway(tmp_path / "gw")
    gw.config_path.write_text(gw.config.toml())
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(15)
    env = dict(harness.DCMTK_ENV, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="2000000")
    proc = subprocess.Popen([str(harness.passerelled_path()), "--config", str(gw.config_path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                any("READY=1" in m for m in messages) and sum("WATCHDOG=1" in m for m in messages) >= 2):
            messages.append(listener.recv(4096).decode())
        assert harness.pn_echo(gw.port, aec=gw.ae_title) == 0x0000
        proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages) and time.monotonic() < deadline + 10:
            messages.append(listener.recv(4096).decode())
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    assert f"STATUS=listening as {gw.ae_title} on port {gw.port}" in messages[ready]
    assert any("WATCHDOG=1" in m for m in messages[ready + 1:]), messages
    stopping = next(i for i, m in enumerate(messages) if "STOPPING=1" in m)
    assert stopping > ready, messages
    assert any(m.startswith("STATUS=") and "instances waiting (no destination)" in m for m in messages), messages


def test_serves_as_an_unprivileged_user():
    """The packaged unit runs as an unprivileged user: nothing may need root (a socket option
    that needs CAP_NET_ADMIN once made it close every connection)."""
    import os
    import pwd
    import shutil
    import tempfile
    workdir = Path(tempfile.mkdtemp(prefix="passerelle-nobody-"))  # pytest's tmp dirs are root-only
    try:
        gw = harness.Gateway(workdir / "gw")
        gw.config_path.write_text(gw.config.toml())
        command = [str(harness.passerelled_path()), "--config", str(gw.config_path)]
        as_user = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for path in (workdir, gw.workdir, gw.config_path):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **as_user)
        try:
            assert wait_until(lambda: proc.poll() is not None
                              or harness.pn_echo(gw.port, aec=gw.ae_title) == 0x0000, 20)
            assert proc.poll() is None, proc.stderr.read().decode()
            assert harness.pn_echo(gw.port, aec=gw.ae_title) == 0x0000
        finally:
            proc.terminate()
            assert proc.wait(20) == 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
