"""The audit trail (docs/audit.md) against real peers: rsyslog as the IHE ATNA audit
repository (TLS with a test CA and client certificates, UDP, TCP), passerellectl audit
verify on a spool database edited behind the daemon's back, and the patient access report."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import Verification

import datagen
import harness
import tlsca

RSYSLOGD = Path("/usr/sbin/rsyslogd")
ISSUER = "CHR-ORLEANS"
SITE = {"id": 213, "emitter": "csorl45000", "name": "CHR Orléans", "issuer_of_patient_id": ISSUER}

pytestmark = pytest.mark.skipif(not RSYSLOGD.exists(),
                                reason="rsyslog not installed (scripts/install-test-deps)")


# --------------------------------------------------------------------------
# rsyslog as the audit repository


class Rsyslog:
    """One rsyslogd in the foreground on 127.0.0.1, writing each raw record as one line."""

    def __init__(self, workdir: Path, transport: str, pki: tlsca.Pki | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.transport = transport
        self.pki = pki
        self.port = harness.free_port()
        self.output = self.workdir / "messages.log"
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        lines = [f'global(workDirectory="{self.workdir}" maxMessageSize="64k"'
                 + (f' defaultNetstreamDriverCAFile="{self.pki.ca_cert}"'
                    f' defaultNetstreamDriverCertFile="{self.pki.server_cert}"'
                    f' defaultNetstreamDriverKeyFile="{self.pki.server_key}"' if self.pki else "")
                 + ")"]
        if self.transport == "udp":
            lines += ['module(load="imudp")',
                      f'input(type="imudp" address="127.0.0.1" port="{self.port}")']
        elif self.transport == "tcp":
            lines += ['module(load="imtcp")',
                      f'input(type="imtcp" address="127.0.0.1" port="{self.port}")']
        else:
            # Mutual TLS: the gateway must show a certificate of the test CA (RFC 5425 §5).
            lines += ['module(load="imtcp")',
                      f'input(type="imtcp" address="127.0.0.1" port="{self.port}" streamDriver.name="gtls"'
                      ' streamDriver.mode="1" streamDriver.authMode="x509/certvalid")']
        lines += ['template(name="raw" type="string" string="%rawmsg%\\n")',
                  f'action(type="omfile" file="{self.output}" template="raw" flushOnTXEnd="on"'
                  ' asyncWriting="off")']
        return "\n".join(lines) + "\n"

    def start(self) -> "Rsyslog":
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(self.config())
        log = open(self.workdir / "rsyslogd.log", "ab")
        self.proc = subprocess.Popen([str(RSYSLOGD), "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if self.transport == "udp":
            time.sleep(1.0)  # nothing to connect to; rsyslog binds at once
        else:
            assert harness.wait_until(self._accepts, 15), "rsyslogd not listening\n" + self.log()
        assert self.proc.poll() is None, "rsyslogd exited\n" + self.log()
        return self

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None

    def log(self) -> str:
        path = self.workdir / "rsyslogd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    @property
    def url(self) -> str:
        return f"{self.transport}://127.0.0.1:{self.port}"

    def records(self) -> list["Record"]:
        if not self.output.exists():
            return []
        # Complete lines only: rsyslog may be writing the last one.
        lines = self.output.read_text(encoding="utf-8").split("\n")[:-1]
        return [Record.parse(line) for line in lines if line]


@dataclass
class Record:
    """An RFC 5424 record carrying a DICOM audit message."""
    pri: int
    header: list[str]
    sd: dict[str, str]
    xml: ET.Element

    @classmethod
    def parse(cls, line: str) -> "Record":
        head, bom, message = line.partition("\ufeff")
        assert bom, f"no BOM before the message: {line[:200]}"
        assert head.startswith("<") and ">1 " in head, head
        pri = int(head[1:head.index(">")])
        fields = head[head.index(">") + 1:].split(" ", 6)  # VERSION TS HOST APP PROCID MSGID SD
        sd_text = fields[6].strip()
        assert sd_text.startswith("[passerelle@32473 ") and sd_text.endswith("]"), sd_text
        sd = dict(p.split("=", 1) for p in sd_text[1:-1].split(" ")[1:])
        sd = {k: v.strip('"') for k, v in sd.items()}
        return cls(pri, fields[:6], sd, ET.fromstring(message))

    @property
    def seq(self) -> int:
        return int(self.sd["seq"])

    @property
    def event_id(self) -> str:
        return self.xml.find("EventIdentification/EventID").get("csd-code")

    @property
    def event_type(self) -> str | None:
        e = self.xml.find("EventIdentification/EventTypeCode")
        return e.get("csd-code") if e is not None else None

    def participants(self) -> list[dict]:
        return [dict(p.attrib, roles=[r.get("csd-code") for r in p.findall("RoleIDCode")])
                for p in self.xml.findall("ActiveParticipant")]

    def objects(self) -> list[dict]:
        return [dict(o.attrib, type=o.find("ParticipantObjectIDTypeCode").get("csd-code"),
                     details={d.get("type"): base64.b64decode(d.get("value")).decode()
                              for d in o.findall("ParticipantObjectDetail")})
                for o in self.xml.findall("ParticipantObjectIdentification")]


@pytest.fixture
def rsyslog(tmp_path):
    started: list[Rsyslog] = []

    def start(transport: str, pki=None) -> Rsyslog:
        r = Rsyslog(tmp_path / f"rsyslog{len(started)}", transport, pki).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


# --------------------------------------------------------------------------
# helpers


def ctl(*args, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    out = subprocess.run([str(harness.passerellectl_path()), *map(str, args)], capture_output=True, text=True,
                         timeout=120)
    if check_rc is not None:
        assert out.returncode == check_rc, f"passerellectl {' '.join(map(str, args))} -> {out.returncode}\n" \
                                           f"{out.stdout}\n{out.stderr}"
    return out


def make_study(directory: Path, patient_id: str, count: int = 2) -> tuple[datagen.Study, list[Path]]:
    study = datagen.Study.new(datagen.Patient(patient_id, f"{patient_id}^Test", issuer=ISSUER))
    files = [datagen.make_ct(directory / f"{patient_id}-{i}.dcm", study, i + 1, rows=32, cols=32)
             for i in range(count)]
    return study, files


def send(gw, files, aet: str) -> None:
    result = harness.storescu(files, gw.port, aet=aet, aec=gw.ae_title)
    assert not result.failed, result.output


def status_audit(gw) -> dict:
    out = ctl("status", "--json", "--config", gw.config_path)
    return json.loads(out.stdout)["audit"]


def by_event(records, code: str) -> list[Record]:
    return [r for r in records if r.event_id == code]


# --------------------------------------------------------------------------
# ATNA


def test_tls_repository_receives_each_act_as_a_dicom_audit_message(tmp_path, rsyslog, start_gateway):
    pki = tlsca.make_pki(tmp_path / "pki")
    repository = rsyslog("tls", pki)
    gw = start_gateway(site=SITE, audit={"repository": repository.url, "ca": str(pki.ca_cert),
                                         "client_cert": str(pki.client_cert), "client_key": str(pki.client_key)})
    study_a, files_a = make_study(tmp_path, "PA")
    send(gw, files_a, "CT1")
    # A user identity (PS3.7 D.3.3.7, type 2): the user name is recorded, never the passcode.
    identity = UserIdentityNegotiation()
    identity.user_identity_type = 2
    identity.primary_field = b"dr.house"
    identity.secondary_field = b"s3cr3t-passcode"
    assoc = harness.pn_associate(gw.port, ((Verification, None),), aet="VIEWER", aec=gw.ae_title,
                                 ext_neg=[identity])
    assert assoc.is_established
    assoc.release()
    # The gateway rejects it (checked below in the audit message; pynetdicom sometimes reports a
    # fast A-ASSOCIATE-RJ followed by the close as an abort).
    harness.association_rejection(gw.port, aet="CT1", aec="NOBODY")

    def arrived():
        records = repository.records()
        return (by_event(records, "110104") and by_event(records, "110113")
                and any(p.get("UserID") == "dr.house" for r in records for p in r.participants()))
    assert harness.wait_until(arrived, 30), repository.records()
    records = repository.records()

    for r in records:
        assert r.pri in (85, 84), r.pri                       # authpriv.notice / authpriv.warning
        assert (r.header[0], r.header[3], r.header[5]) == ("1", "passerelle", "IHE+RFC-3881"), r.header
        assert len(r.sd["head"]) == 64 and len(r.sd["hash"]) == 64
        source = r.xml.find("AuditSourceIdentification")
        assert source.get("AuditSourceID") == "csorl45000" and source.get("AuditEnterpriseSiteID") == "213"
    seqs = [r.seq for r in records]
    assert seqs == list(range(1, len(seqs) + 1)), seqs       # every row, in order

    start = records[0]
    assert (start.event_id, start.event_type) == ("110100", "110120")

    received = by_event(records, "110104")
    assert len(received) == 1
    r = received[0]
    assert r.xml.find("EventIdentification").get("EventActionCode") == "C"
    assert r.xml.find("EventIdentification").get("EventOutcomeIndicator") == "0"
    sender, gateway = r.participants()[0], r.participants()[1]
    assert sender["UserID"] == "CT1" and sender["UserIsRequestor"] == "true"
    assert sender["NetworkAccessPointID"] == "127.0.0.1" and sender["roles"] == ["110153"]
    assert gateway["UserID"] == gw.ae_title and gateway["roles"] == ["110152"]
    objects = r.objects()
    assert objects[0]["ParticipantObjectID"] == study_a.study_uid and objects[0]["type"] == "110180"
    assert objects[0]["details"]["NumberOfInstances"] == "2"
    assert objects[1]["ParticipantObjectID"] == f"PA^^^{ISSUER}"
    assert (objects[1]["ParticipantObjectTypeCode"], objects[1]["ParticipantObjectTypeCodeRole"]) == ("1", "1")

    logins = [r for r in by_event(records, "110114") if r.participants()[0]["UserID"] == "dr.house"]
    assert len(logins) == 1
    assert logins[0].participants()[0]["AlternativeUserID"] == "AETITLES=VIEWER"
    rejected = by_event(records, "110113")
    assert [(r.event_type, r.participants()[0]["UserID"]) for r in rejected] == [("110126", "CT1")]
    assert rejected[0].xml.find("EventIdentification").get("EventOutcomeIndicator") == "4"

    # The passcode is nowhere: not in the messages, not in the spool.
    assert b"s3cr3t-passcode" not in repository.output.read_bytes()
    assert gw.terminate() == 0
    assert b"s3cr3t-passcode" not in (gw.spool / "spool.sqlite").read_bytes()
    ctl("audit", "verify", "--spool", gw.spool)


def test_udp_repository_gets_one_datagram_per_act(tmp_path, rsyslog, start_gateway):
    repository = rsyslog("udp")
    gw = start_gateway(site=SITE, audit={"repository": repository.url})
    study, files = make_study(tmp_path, "PU", count=3)
    send(gw, files, "MR1")
    assert harness.wait_until(lambda: by_event(repository.records(), "110104"), 30), repository.records()
    r = by_event(repository.records(), "110104")[0]
    assert [o["ParticipantObjectID"] for o in r.objects()] == [study.study_uid, f"PU^^^{ISSUER}"]
    assert r.objects()[0]["details"]["NumberOfInstances"] == "3"
    assert r.participants()[0]["UserID"] == "MR1"


def test_repository_down_then_up_gets_every_message_in_order(tmp_path, rsyslog, start_gateway):
    pki = tlsca.make_pki(tmp_path / "pki")
    repository = rsyslog("tls", pki)
    gw = start_gateway(site=SITE, audit={"repository": repository.url, "ca": str(pki.ca_cert),
                                         "client_cert": str(pki.client_cert), "client_key": str(pki.client_key)})
    _, files = make_study(tmp_path, "PD0", count=1)
    send(gw, files, "CT1")
    assert harness.wait_until(lambda: by_event(repository.records(), "110104"), 30)
    repository.stop()

    studies = []
    for n in range(1, 4):
        study, files = make_study(tmp_path, f"PD{n}", count=n)
        send(gw, files, "CT1")
        studies.append(study)
    assert harness.wait_until(lambda: status_audit(gw)["queue_depth"] >= 6, 30), status_audit(gw)
    down = status_audit(gw)
    assert down.get("last_error") is not None, down

    repository.start()  # same port, same file
    assert harness.wait_until(lambda: status_audit(gw)["queue_depth"] == 0, 60), status_audit(gw)
    head = status_audit(gw)["head_seq"]
    assert harness.wait_until(lambda: max((r.seq for r in repository.records()), default=0) >= head, 30)
    seqs = [r.seq for r in repository.records()]
    # Every row arrived, in id order (a row sent just before the stop may come twice, never out of order).
    assert sorted(set(seqs)) == list(range(1, head + 1)), seqs
    assert all(b >= a for a, b in zip(seqs, seqs[1:])) or seqs == sorted(seqs), seqs
    received = {o["ParticipantObjectID"] for r in by_event(repository.records(), "110104") for o in r.objects()}
    assert {s.study_uid for s in studies} <= received


# --------------------------------------------------------------------------
# verify and export


@pytest.fixture
def audited_spool(tmp_path, start_gateway):
    """A stopped gateway's spool with acts on two patients (no repository)."""
    gw = start_gateway(site=SITE)
    study_a, files_a = make_study(tmp_path, "PATIENT-A", count=2)
    study_b, files_b = make_study(tmp_path, "PATIENT-B", count=3)
    send(gw, files_a, "CT1")
    send(gw, files_b, "MR1")
    send(gw, files_a[:1], "CT2")  # A's study again, from another modality
    assert gw.terminate() == 0
    return gw, study_a, study_b


def copy_spool(gw, tmp_path, name: str) -> Path:
    target = tmp_path / name
    target.mkdir()
    shutil.copy(gw.spool / "spool.sqlite", target / "spool.sqlite")
    return target


def test_verify_names_an_edited_row_a_deleted_row_and_a_cut_tail(tmp_path, audited_spool):
    gw, _, _ = audited_spool
    intact = ctl("audit", "verify", "--spool", gw.spool)
    assert "audit chain intact" in intact.stdout
    with sqlite3.connect(gw.spool / "spool.sqlite") as db:
        rows = db.execute("SELECT id, hash FROM audit ORDER BY id").fetchall()
    assert len(rows) >= 6
    head = rows[-1][1]
    ctl("audit", "verify", "--spool", gw.spool, "--head", head)
    middle = rows[len(rows) // 2][0]

    edited = copy_spool(gw, tmp_path, "edited")
    with sqlite3.connect(edited / "spool.sqlite") as db:
        with pytest.raises(sqlite3.DatabaseError):      # the daemon's triggers refuse it…
            db.execute("UPDATE audit SET content = replace(content, 'CT1', 'XX1')")
        db.execute("DROP TRIGGER audit_no_update")       # …someone with the file removes them
        db.execute("UPDATE audit SET content = replace(content, 'CT1', 'XX1') WHERE content LIKE '%CT1%'")
        first_ct1 = db.execute("SELECT MIN(id) FROM audit WHERE content LIKE '%XX1%'").fetchone()[0]
    out = ctl("audit", "verify", "--spool", edited, check_rc=1)
    assert f"row {first_ct1}:" in out.stderr and "altered" in out.stderr, out.stderr

    deleted = copy_spool(gw, tmp_path, "deleted")
    with sqlite3.connect(deleted / "spool.sqlite") as db:
        db.execute("DROP TRIGGER audit_no_delete")
        db.execute("DELETE FROM audit WHERE id = ?", (middle,))
    out = ctl("audit", "verify", "--spool", deleted, check_rc=1)
    assert f"row {middle + 1}:" in out.stderr, out.stderr

    cut = copy_spool(gw, tmp_path, "cut")
    with sqlite3.connect(cut / "spool.sqlite") as db:
        db.execute("DROP TRIGGER audit_no_delete")
        db.execute("DELETE FROM audit WHERE id > ?", (rows[-3][0],))
    ctl("audit", "verify", "--spool", cut)                # a cut tail is a valid chain…
    out = ctl("audit", "verify", "--spool", cut, "--head", head, check_rc=1)   # …but not against the head
    assert "tail was cut" in out.stderr and head in out.stderr, out.stderr


def test_export_lists_exactly_one_patients_acts(tmp_path, audited_spool):
    gw, study_a, study_b = audited_spool
    out = ctl("audit", "export", "--patient", "PATIENT-A", "--config", gw.config_path, "--format", "json")
    rows = json.loads(out.stdout)
    assert [(r["action"], r["ae_title"], r["details"]["count"]) for r in rows] == [
        ("instancesReceived", "CT1", "2"), ("instancesReceived", "CT2", "1")]
    assert all(r["studies"] == [study_a.study_uid] for r in rows)
    assert all(r["outcome"] == "success" and r["address"].startswith("127.0.0.1") for r in rows)
    assert study_b.study_uid not in out.stdout and "PATIENT-B" not in out.stdout

    csv = ctl("audit", "export", "--patient", "PATIENT-B", "--issuer", ISSUER, "--spool", gw.spool).stdout
    lines = csv.strip().splitlines()
    assert lines[0].startswith("seq,at,action,outcome")
    assert len(lines) == 2 and "MR1" in lines[1] and study_b.study_uid in lines[1]
    assert study_a.study_uid not in csv

    assert json.loads(ctl("audit", "export", "--patient", "PATIENT-A", "--issuer", "ELSEWHERE", "--spool", gw.spool,
                          "--format", "json").stdout) == []
    future = ctl("audit", "export", "--patient", "PATIENT-A", "--config", gw.config_path, "--since", "2999-01-01",
                 "--format", "json")
    assert json.loads(future.stdout) == []


def test_a_studys_trail_through_upload_verification_and_purge_survives_the_purge(tmp_path, start_gateway):
    from orthanc import Orthanc
    hub = Orthanc(tmp_path / "hub").start()
    try:
        gw = start_gateway(site=SITE, upload={"stable_after": "1s", "retry_min": "200ms", "retry_max": "2s"},
                           destinations={"archive": {"url": hub.dicomweb_url}}, spool_extra={"retention": "1s"})
        study_a, files_a = make_study(tmp_path, "PATIENT-U", count=3)
        study_b, files_b = make_study(tmp_path, "PATIENT-V", count=2)
        send(gw, files_a, "CT1")
        send(gw, files_b, "CT1")

        def actions():
            out = ctl("audit", "export", "--patient", "PATIENT-U", "--config", gw.config_path, "--format", "json")
            return [r["action"] for r in json.loads(out.stdout)]
        assert harness.wait_until(lambda: "purge" in actions(), 60), actions()
        assert harness.spool_list(gw.spool) == [] or all(r["study_instance_uid"] != study_a.study_uid
                                                          for r in harness.spool_list(gw.spool))
        assert gw.terminate() == 0
    finally:
        hub.stop()

    rows = json.loads(ctl("audit", "export", "--patient", "PATIENT-U", "--config", gw.config_path,
                          "--format", "json").stdout)
    acts = [r["action"] for r in rows]
    # Uploads start while the study arrives: they may come before the association's row.
    assert acts.count("instancesReceived") == 1 and acts[-1] == "purge", acts
    assert acts.index("upload") < acts.index("verification") < acts.index("purge"), acts
    assert sum(int(r["details"]["count"]) for r in rows if r["action"] == "upload") == 3
    assert all(r["studies"] == [study_a.study_uid] for r in rows)
    assert [r["destination"] for r in rows if r["action"] in ("upload", "verification")] \
        == ["archive"] * (len(acts) - 2)
    assert study_b.study_uid not in json.dumps(rows)
    ctl("audit", "verify", "--spool", gw.spool)


def test_auditing_off_records_nothing_and_still_runs_and_stops(tmp_path, start_gateway):
    gw = start_gateway(site=SITE, audit={"enabled": False})
    _, files = make_study(tmp_path, "PO", count=1)
    send(gw, files, "CT1")
    assert "audit.enabled is false" in gw.log_text()
    assert gw.terminate() == 0
    assert "audit chain intact: 0 rows" in ctl("audit", "verify", "--spool", gw.spool).stdout


def test_a_calling_ae_title_from_another_host_is_refused_and_a_security_alert(rsyslog, start_gateway):
    """[dicom] check_calling_host: CT1's [[ae]] entry binds it to 10.9.9.9, so CT1 calling from
    127.0.0.1 is refused (A-ASSOCIATE-RJ, calling AE title not recognized), logged with the
    address, and sent as a Security Alert naming why. CT2 (bound to 127.0.0.1 by its host) and
    an AE title without an entry are accepted."""
    repository = rsyslog("udp")
    gw = start_gateway(site=SITE, audit={"repository": repository.url}, dicom_extra={"check_calling_host": True},
                       aes=[{"title": "CT1", "host": "10.9.9.9", "port": 104, "hosts": ["10.9.9.9", "10.8.0.0/16"]},
                            {"title": "CT2", "host": "127.0.0.1", "port": 104}])

    assert harness.association_rejection(gw.port, aet="CT1", aec=gw.ae_title) == (1, 1, 3)
    assert harness.association_rejection(gw.port, aet="CT2", aec=gw.ae_title) is None
    assert harness.association_rejection(gw.port, aet="MR9", aec=gw.ae_title) is None
    assert harness.wait_until(lambda: "association refused: calling AE title CT1 from 127.0.0.1" in gw.log_text(), 10), \
        gw.log_tail()

    def alerts():
        return [r for r in by_event(repository.records(), "110113") if r.participants()[0]["UserID"] == "CT1"]
    assert harness.wait_until(alerts, 30), repository.records()
    alert = alerts()[0]
    assert alert.event_type == "110126"                                 # Node Authentication
    assert alert.participants()[0]["NetworkAccessPointID"] == "127.0.0.1"
    event = alert.xml.find("EventIdentification")
    assert event.get("EventOutcomeIndicator") == "4"
    assert "not one of its hosts (10.9.9.9, 10.8.0.0/16)" in event.findtext("EventOutcomeDescription")
