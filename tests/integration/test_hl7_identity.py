"""Identity updates from the PAS (ADT^A08/A31/A47/A40, IHE PIR and PAM France) reach the
studies already at the data center: retrieved, corrected and stored again at each destination
(Orthanc with `OverwriteInstances`; with `identity_update = "orthanc"` the copy left under a
changed patient ID is deleted) and verified by QIDO-RS; instances still in the spool leave
corrected. Real Orthanc hubs, the hl7 package's MLLP client, DCMTK's storescu."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from pathlib import Path

import pydicom

import datagen
import harness
from hl7peer import ack_fields, adt, send
from test_hl7 import _connectable, hl7_list
from test_upload import UPLOAD, start_hub  # noqa: F401  (fixture)

ISSUER = "CHR-ORLEANS"


def identity_gateway(start_gateway, destinations: dict):
    port = harness.free_port()
    gw = start_gateway(site={"issuer_of_patient_id": ISSUER, "name": "CHR Orléans"}, upload=UPLOAD,
                       destinations=destinations, tables={"hl7": {"port": port, "bind": "127.0.0.1"}})
    gw.hl7_port = port
    assert harness.wait_until(lambda: _connectable(port), 10), gw.log_tail()
    return gw


def send_study(gw, tmp_path: Path, patient_id: str, name: str = "DUPONT^JEAN", **attrs) -> datagen.Study:
    study = datagen.Study.new(datagen.Patient(patient_id, name, issuer=ISSUER))
    files = datagen.make_ct_series(tmp_path / patient_id, 2, study, rows=32, cols=32)
    if attrs:
        files = [datagen.with_modified_attribute(f, f, **attrs) for f in files]
    assert harness.storescu(files, gw.port).returncode == 0
    return study


def qido_patient(hub, study_uid: str) -> list[dict]:
    """The patient of each study QIDO-RS finds with this UID (Orthanc holds one per patient ID)."""
    query = urllib.parse.urlencode([("StudyInstanceUID", study_uid), ("includefield", "00100030"),
                                    ("includefield", "00100040")])
    found = []
    for result in hub.get_json(f"/dicom-web/studies?{query}") or []:
        def value(tag):
            values = result.get(tag, {}).get("Value") or [""]
            return values[0]["Alphabetic"] if isinstance(values[0], dict) else values[0]
        found.append({"id": value("00100020"), "name": value("00100010"), "birth": value("00100030"),
                      "sex": value("00100040")})
    return found


def shows(hub, study_uid: str, **expected) -> bool:
    found = qido_patient(hub, study_uid)
    return len(found) == 1 and all(found[0][key] == value for key, value in expected.items())


def apply(gw, message: str, control_id: str, encoding: str = "utf-8") -> dict:
    assert ack_fields(send(gw.hl7_port, message, encoding))["code"] == "AA"
    rows = lambda: {r["control_id"]: r for r in hl7_list(gw)}  # noqa: E731
    assert harness.wait_until(lambda: rows().get(control_id, {}).get("state") in ("applied", "failed"), 30), rows()
    assert rows()[control_id]["state"] == "applied", rows()[control_id]
    return rows()[control_id]


def corrections(gw) -> list[dict]:
    out = subprocess.run([str(harness.passerellectl_path()), "hl7", "corrections", "--json", "--spool", str(gw.spool)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def audit_acts(gw, patient_id: str, action: str) -> list[dict]:
    out = subprocess.run([str(harness.passerellectl_path()), "audit", "export", "--patient", patient_id,
                          "--issuer", ISSUER, "--format", "json", "--spool", str(gw.spool)],
                         capture_output=True, text=True, timeout=30)
    return [a for a in json.loads(out.stdout) if a["action"] == action]


def test_a08_after_upload_is_verified_at_an_orthanc_archive_and_at_an_overwriting_hub(start_gateway, start_hub,
                                                                                    tmp_path):
    archive = start_hub("archive", extra_config={"OverwriteInstances": True})
    community = start_hub("community", extra_config={"OverwriteInstances": True})
    gw = identity_gateway(start_gateway, {
        "archive": {"url": archive.dicomweb_url, "identity_update": "orthanc"},
        "community": {"url": community.dicomweb_url, "shared": True},
    })
    study = send_study(gw, tmp_path, "PAT-I1")
    latin = send_study(gw, tmp_path, "PAT-I2", SpecificCharacterSet="ISO_IR 100")
    for hub in (archive, community):
        assert harness.wait_until(lambda: {study.study_uid, latin.study_uid} <= hub.study_uids(), 60), gw.log_tail()
    # UTF-8 from the PAS, into an instance in the default repertoire.
    row = apply(gw, adt("A08-1", "A08", patient_id="PAT-I1", issuer=ISSUER, family="MÜLLER", given="Zoé",
                        birth="19850314", sex="F"), "A08-1")
    assert "MÜLLER^Zoé" in row["detail"], row
    # ISO 8859/1 from the PAS, into an ISO_IR 100 instance.
    apply(gw, adt("A08-2", "A08", patient_id="PAT-I2", issuer=ISSUER, family="LEFÈVRE", given="Anaïs",
                  charset="8859/1"), "A08-2", encoding="latin-1")
    for hub in (archive, community):
        assert harness.wait_until(lambda: shows(hub, study.study_uid, id="PAT-I1", name="MÜLLER^Zoé",
                                                birth="19850314", sex="F"), 90), (qido_patient(hub, study.study_uid),
                                                                                  corrections(gw), gw.log_tail())
        assert harness.wait_until(lambda: shows(hub, latin.study_uid, id="PAT-I2", name="LEFÈVRE^Anaïs"), 90), \
            (qido_patient(hub, latin.study_uid), corrections(gw))
    assert harness.wait_until(lambda: len([c for c in corrections(gw) if c["state"] == "verified"]) == 4, 30), corrections(gw)
    # Every image of the study carries it, not only the study's index: the file itself.
    sop = next(iter(archive.qido_instances(study.study_uid)))["00080018"]["Value"][0]
    path = tmp_path / "corrected.dcm"
    path.write_bytes(community.instance_file(sop, study.study_uid))
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName) == "MÜLLER^Zoé" and ds.PatientBirthDate == "19850314" and ds.PatientID == "PAT-I1"
    assert ds.IssuerOfPatientID == ISSUER
    # Traced: the update and each verified correction (ATNA Patient Record).
    assert len(audit_acts(gw, "PAT-I1", "identityUpdated")) == 1
    assert {a["destination"] for a in audit_acts(gw, "PAT-I1", "identityCorrected")} == {"archive", "community"}
    status = json.loads(subprocess.run([str(harness.passerellectl_path()), "status", "--json", "--socket",
                                        str(gw.spool / "status.sock")], capture_output=True, text=True, timeout=30).stdout)
    assert status["hl7"]["corrections"]["verified"] == 4, status["hl7"]


def test_a47_and_a40_within_the_site_and_an_update_before_the_study(start_gateway, start_hub, tmp_path):
    archive = start_hub("archive", extra_config={"OverwriteInstances": True})
    gw = identity_gateway(start_gateway, {"archive": {"url": archive.dicomweb_url, "identity_update": "orthanc"}})
    first = send_study(gw, tmp_path, "PAT-OLD")
    merged = send_study(gw, tmp_path, "PAT-DUP")
    assert harness.wait_until(lambda: {first.study_uid, merged.study_uid} <= archive.study_uids(), 60), gw.log_tail()
    # A47: the identifier changes; the study moves to the new ID, nothing stays under the old.
    apply(gw, adt("A47-1", "A47", patient_id="PAT-NEW", issuer=ISSUER, family="DUPONT", given="JEAN",
                  prior="PAT-OLD"), "A47-1")
    assert harness.wait_until(lambda: shows(archive, first.study_uid, id="PAT-NEW"), 90), \
        (qido_patient(archive, first.study_uid), corrections(gw), gw.log_tail())
    # A40: a duplicate record of the site merged into PAT-NEW.
    apply(gw, adt("A40-1", "A40", patient_id="PAT-NEW", issuer=ISSUER, family="DUPONT", given="JEAN",
                  prior="PAT-DUP"), "A40-1")
    assert harness.wait_until(lambda: shows(archive, merged.study_uid, id="PAT-NEW", name="DUPONT^JEAN"), 90), \
        (qido_patient(archive, merged.study_uid), corrections(gw))
    # An update that arrives before its patient's next study: the study leaves corrected,
    # and a study sent under the old (merged) ID leaves under the new one.
    apply(gw, adt("A08-3", "A08", patient_id="PAT-NEW", issuer=ISSUER, family="DUPONT", given="Jean-Noël",
                  birth="19700101", sex="M", ins="1850399123456", status="VALI"), "A08-3")
    later = send_study(gw, tmp_path, "PAT-DUP", name="DUPONT^J")
    assert harness.wait_until(lambda: later.study_uid in archive.study_uids(), 60), gw.log_tail()
    assert shows(archive, later.study_uid, id="PAT-NEW", name="DUPONT^Jean-Noël", birth="19700101"), \
        qido_patient(archive, later.study_uid)
    sop = next(iter(archive.qido_instances(later.study_uid)))["00080018"]["Value"][0]
    path = tmp_path / "later.dcm"
    path.write_bytes(archive.instance_file(sop, later.study_uid))
    ds = pydicom.dcmread(path)
    assert ds.SpecificCharacterSet == "ISO_IR 192" and str(ds.PatientName) == "DUPONT^Jean-Noël"
    ins = ds.OtherPatientIDsSequence[0]
    assert ins.PatientID == "1850399123456" and ins.IssuerOfPatientID == "1.2.250.1.213.1.4.8"
    # An A40 across issuers is refused and changes nothing.
    ack = ack_fields(send(gw.hl7_port, adt("A40-X", "A40", patient_id="PAT-NEW", issuer=ISSUER, prior="PAT-NEW",
                                           prior_issuer="CHRU-TOURS")))
    assert ack["code"] == "AE"
    assert shows(archive, first.study_uid, id="PAT-NEW")
