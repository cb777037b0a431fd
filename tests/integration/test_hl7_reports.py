"""Reports from the RIS (ORU^R01) become DICOM instances of their study — Basic Text SR for
text, Encapsulated PDF for a PDF — and reach a real Orthanc archive like any received
instance: checked with dciodvfy (dicom3tools), dsrdump and dcm2pdf (DCMTK)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pydicom
import pytest

import datagen
import harness
import hl7peer
from hl7peer import ack_fields, oru_r01, send
from test_hl7 import _connectable, hl7_list
from test_upload import UPLOAD, start_hub  # noqa: F401  (fixture)

ISSUER = "CHR-ORLEANS"


def report_gateway(start_gateway, hub, **hl7_settings):
    port = harness.free_port()
    gw = start_gateway(site={"issuer_of_patient_id": ISSUER, "name": "CHR Orléans"},
                       upload=UPLOAD, destinations={"archive": {"url": hub.dicomweb_url}},
                       tables={"hl7": {"port": port, "bind": "127.0.0.1", **hl7_settings}})
    gw.hl7_port = port
    assert harness.wait_until(lambda: _connectable(port), 10), gw.log_tail()
    return gw


def send_study(gw, tmp_path: Path, count: int = 2, **attrs) -> datagen.Study:
    study = datagen.Study.new(datagen.Patient("PAT-R1", "DUPONT^JEAN", issuer=ISSUER))
    files = datagen.make_ct_series(tmp_path / "study", count, study, rows=64, cols=64)
    if attrs:
        files = [datagen.with_modified_attribute(f, f, **attrs) for f in files]
    assert harness.storescu(files, gw.port).returncode == 0
    return study


def report_rows(gw) -> dict[str, dict]:
    return {r["control_id"]: r for r in hl7_list(gw)}


def wait_applied(gw, control_id: str, timeout: float = 30) -> dict:
    assert harness.wait_until(lambda: report_rows(gw).get(control_id, {}).get("state") in ("applied", "failed"),
                              timeout), report_rows(gw)
    row = report_rows(gw)[control_id]
    assert row["state"] == "applied", row
    return row


def sop_of(detail: str) -> str:
    return detail.split()[3] if detail.startswith("Basic Text SR") else detail.split()[2]


def dciodvfy_errors(path: Path) -> list[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def test_text_report_becomes_a_basic_text_sr_at_the_archive(start_gateway, start_hub, tmp_path):
    hub = start_hub()
    gw = report_gateway(start_gateway, hub)
    study = send_study(gw, tmp_path)
    lines = ["Scanner thoracique sans injection.", "Pas de nodule | ni d'épanchement.", "Conclusion : normal."]
    message = oru_r01("ORU-1", patient_id="PAT-R1", issuer=ISSUER, study_uid=study.study_uid,
                      lines=[line.replace("|", "\\F\\") for line in lines])
    assert ack_fields(send(gw.hl7_port, message))["code"] == "AA"
    row = wait_applied(gw, "ORU-1")
    sop = sop_of(row["detail"])
    assert harness.wait_until(lambda: sop in hub.instance_uids(), 60), gw.log_tail()
    path = tmp_path / "sr.dcm"
    path.write_bytes(hub.instance_file(sop, study.study_uid))
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.11"
    assert ds.StudyInstanceUID == study.study_uid and ds.PatientID == "PAT-R1" and ds.IssuerOfPatientID == ISSUER
    assert ds.Modality == "SR" and ds.SeriesInstanceUID != study.series_uid
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "VERIFIED"
    assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == "MARTIN^Claire"
    assert ds.SOPInstanceUID.startswith("2.25.")
    dump = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    for line in lines:
        assert line in ds.ContentSequence[-1].TextValue
    assert "Diagnostic imaging report" in dump.stdout and "MARTIN^Claire" in dump.stdout
    # Traced: the report made, for the study's patient.
    out = subprocess.run([str(harness.passerellectl_path()), "audit", "export", "--patient", "PAT-R1", "--issuer", ISSUER,
                          "--format", "json", "--spool", str(gw.spool)], capture_output=True, text=True, timeout=30)
    created = [a for a in json.loads(out.stdout) if a["action"] == "reportCreated"]
    assert len(created) == 1 and created[0]["studies"] == [study.study_uid], out.stdout


def test_pdf_report_by_accession_number_and_a_correction(start_gateway, start_hub, tmp_path):
    hub = start_hub()
    gw = report_gateway(start_gateway, hub)
    study = send_study(gw, tmp_path, AccessionNumber="ACC-PDF-7")
    pdf = hl7peer.minimal_pdf("Compte rendu du scanner")
    message = oru_r01("ORU-PDF", patient_id="PAT-R1", issuer=ISSUER, accession="ACC-PDF-7", pdf=pdf)
    assert ack_fields(send(gw.hl7_port, message))["code"] == "AA"
    first = sop_of(wait_applied(gw, "ORU-PDF")["detail"])
    assert harness.wait_until(lambda: first in hub.instance_uids(), 60), gw.log_tail()
    path = tmp_path / "pdf.dcm"
    path.write_bytes(hub.instance_file(first, study.study_uid))
    assert dciodvfy_errors(path) == []
    extracted = tmp_path / "out.pdf"
    out = subprocess.run(["dcm2pdf", str(path), str(extracted)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert extracted.read_bytes() == pdf
    # A corrected report (OBR-25 = C): a new instance that names the one it replaces.
    corrected = oru_r01("ORU-PDF-C", patient_id="PAT-R1", issuer=ISSUER, accession="ACC-PDF-7", status="C",
                        lines=["Rectificatif : nodule de 4 mm du lobe supérieur droit."])
    assert ack_fields(send(gw.hl7_port, corrected))["code"] == "AA"
    row = wait_applied(gw, "ORU-PDF-C")
    assert f"replacing {first}" in row["detail"]
    second = sop_of(row["detail"])
    assert harness.wait_until(lambda: second in hub.instance_uids(), 60)
    path2 = tmp_path / "sr2.dcm"
    path2.write_bytes(hub.instance_file(second, study.study_uid))
    assert dciodvfy_errors(path2) == []
    predecessor = pydicom.dcmread(path2).PredecessorDocumentsSequence[0]
    assert predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == first


def test_a_report_before_its_study_waits_then_follows_it(start_gateway, start_hub, tmp_path):
    hub = start_hub()
    gw = report_gateway(start_gateway, hub)
    study = datagen.Study.new(datagen.Patient("PAT-R1", "DUPONT^JEAN", issuer=ISSUER))
    message = oru_r01("ORU-EARLY", patient_id="PAT-R1", issuer=ISSUER, study_uid=study.study_uid)
    assert ack_fields(send(gw.hl7_port, message))["code"] == "AA"
    assert harness.wait_until(lambda: report_rows(gw)["ORU-EARLY"]["state"] == "waiting", 20)
    assert "neither in the spool nor at the archive yet" in report_rows(gw)["ORU-EARLY"]["detail"]
    files = datagen.make_ct_series(tmp_path / "late", 2, study, rows=64, cols=64)
    assert harness.storescu(files, gw.port).returncode == 0
    sop = sop_of(wait_applied(gw, "ORU-EARLY", timeout=30)["detail"])
    assert harness.wait_until(lambda: {sop} | {datagen.read(f).SOPInstanceUID for f in files} <= hub.instance_uids(), 60)


def test_a_report_for_another_patient_is_not_applied(start_gateway, start_hub, tmp_path):
    hub = start_hub()
    gw = report_gateway(start_gateway, hub)
    study = send_study(gw, tmp_path)
    wrong_patient = oru_r01("ORU-WRONG", patient_id="PAT-OTHER", issuer=ISSUER, study_uid=study.study_uid)
    wrong_issuer = oru_r01("ORU-ISSUER", patient_id="PAT-R1", issuer="CHU-TOURS", study_uid=study.study_uid)
    for message in (wrong_patient, wrong_issuer):
        assert ack_fields(send(gw.hl7_port, message))["code"] == "AA"
    for control_id in ("ORU-WRONG", "ORU-ISSUER"):
        assert harness.wait_until(lambda: report_rows(gw)[control_id]["state"] == "failed", 20)
        assert "is not the patient of" in report_rows(gw)[control_id]["detail"]
    failed = {r["control_id"] for r in hl7_list(gw, "--failed")}
    assert {"ORU-WRONG", "ORU-ISSUER"} <= failed


def test_the_community_shows_the_report_column_yes(start_gateway, start_hub, tmp_path):
    """The report reaches the hub; a C-FIND through the community search folder, answered
    from that hub, then flags the study `YES` in the PASSERELLE private block."""
    import community as cm
    from test_community import find_ok, study_query, text
    hub = start_hub()
    port = harness.free_port()
    gw = start_gateway(site={"issuer_of_patient_id": ISSUER}, upload=UPLOAD,
                       destinations={"archive": {"url": hub.dicomweb_url}},
                       communities=[{"ae_title": "MIRC", "destination": "archive", "exclude_own_site": False}],
                       tables={"hl7": {"port": port, "bind": "127.0.0.1"}})
    assert harness.wait_until(lambda: _connectable(port), 10)
    study = send_study(gw, tmp_path)
    assert harness.wait_until(lambda: study.study_uid in hub.study_uids(), 60)

    def report_flag() -> str:
        results = find_ok(gw, study_query(StudyInstanceUID=study.study_uid))
        assert len(results) == 1
        return text(results[0], cm.TAG_REPORT)

    assert report_flag() == "NO"
    message = oru_r01("ORU-CF", patient_id="PAT-R1", issuer=ISSUER, study_uid=study.study_uid)
    assert ack_fields(send(port, message))["code"] == "AA"
    sop = sop_of(wait_applied(gw, "ORU-CF")["detail"])
    assert harness.wait_until(lambda: sop in hub.instance_uids(), 60)
    assert report_flag() == "YES"


def test_a_cancelled_report_is_withdrawn_from_the_community_and_kept_at_the_archive(start_gateway, start_hub, tmp_path):
    archive = start_hub("archive")
    community = start_hub("community")
    port = harness.free_port()
    gw = start_gateway(site={"issuer_of_patient_id": ISSUER, "name": "CHR Orléans"}, upload=UPLOAD,
                       destinations={"archive": {"url": archive.dicomweb_url},
                                     "community": {"url": community.dicomweb_url, "shared": True,
                                                   "withdraw": "orthanc"}},
                       tables={"hl7": {"port": port, "bind": "127.0.0.1"}})
    gw.hl7_port = port
    assert harness.wait_until(lambda: _connectable(port), 10), gw.log_tail()
    study = send_study(gw, tmp_path, AccessionNumber="ACC-X1")
    assert ack_fields(send(port, oru_r01("ORU-X0", patient_id="PAT-R1", issuer=ISSUER, accession="ACC-X1")))["code"] == "AA"
    sop = sop_of(wait_applied(gw, "ORU-X0")["detail"])
    for hub in (archive, community):
        assert harness.wait_until(lambda: sop in hub.instance_uids(), 60), gw.log_tail()
    # The RIS cancels the order (OBR-25 = X): gone from the community (QIDO-RS), kept at the archive.
    cancel = oru_r01("ORU-X1", patient_id="PAT-R1", issuer=ISSUER, accession="ACC-X1", status="X")
    assert ack_fields(send(port, cancel))["code"] == "AA"
    row = wait_applied(gw, "ORU-X1")
    assert sop in row["detail"] and "community" in row["detail"], row
    assert harness.wait_until(lambda: sop not in community.instance_uids(), 60), gw.log_tail()
    assert community.qido_instances(study.study_uid, SOPInstanceUID=sop) == []
    assert sop in archive.instance_uids() and study.study_uid in community.study_uids(), "the images stay"
    out = subprocess.run([str(harness.passerellectl_path()), "audit", "export", "--patient", "PAT-R1", "--issuer", ISSUER,
                          "--format", "json", "--spool", str(gw.spool)], capture_output=True, text=True, timeout=30)
    withdrawals = [a for a in json.loads(out.stdout) if a["action"] == "withdrawal"]
    assert len(withdrawals) == 1 and withdrawals[0]["details"]["sop_instance_uid"] == sop, out.stdout
    # A report still waiting for its study when its order is cancelled is given up.
    assert ack_fields(send(port, oru_r01("ORU-X2", patient_id="PAT-R1", issuer=ISSUER, accession="ACC-LATE")))["code"] == "AA"
    assert ack_fields(send(port, oru_r01("ORU-X3", patient_id="PAT-R1", issuer=ISSUER, accession="ACC-LATE",
                                         status="X")))["code"] == "AA"
    assert harness.wait_until(lambda: report_rows(gw)["ORU-X2"]["state"] == "failed", 30), report_rows(gw)
    assert "cancelled by ORU-X3" in report_rows(gw)["ORU-X2"]["detail"]
    assert "no report of it was made" in wait_applied(gw, "ORU-X3")["detail"]


def test_a_report_whose_study_is_only_at_the_archive_is_made_from_what_the_archive_says(start_gateway, start_hub,
                                                                                           tmp_path):
    hub = start_hub()
    gw = report_gateway(start_gateway, hub)
    # A study the spool never held (purged after its retention, or archived before Passerelle).
    study = datagen.Study.new(datagen.Patient("PAT-R9", "MARTIN^PAUL", issuer=ISSUER))
    files = datagen.make_ct_series(tmp_path / "old", 1, study, rows=32, cols=32)
    files = [datagen.with_modified_attribute(f, f, AccessionNumber="ACC-OLD-9") for f in files]
    status, _ = hub.stow(files, study.study_uid)
    assert status == 200
    message = oru_r01("ORU-OLD", patient_id="PAT-R9", issuer=ISSUER, accession="ACC-OLD-9",
                      lines=["Relecture : pas de changement."])
    assert ack_fields(send(gw.hl7_port, message))["code"] == "AA"
    row = wait_applied(gw, "ORU-OLD")
    assert study.study_uid in row["detail"], row
    sop = sop_of(row["detail"])
    assert harness.wait_until(lambda: sop in hub.instance_uids(), 60), gw.log_tail()
    path = tmp_path / "late.dcm"
    path.write_bytes(hub.instance_file(sop, study.study_uid))
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == study.study_uid and ds.PatientID == "PAT-R9" and str(ds.PatientName) == "MARTIN^PAUL"
    assert ds.AccessionNumber == "ACC-OLD-9" and dciodvfy_errors(path) == []
    # Another site's patient with the same ID is not this study's: the report is not made.
    other = oru_r01("ORU-OTHER", patient_id="PAT-R9", issuer="CHRU-TOURS", accession="ACC-OLD-9")
    assert ack_fields(send(gw.hl7_port, other))["code"] == "AA"
    assert harness.wait_until(lambda: report_rows(gw)["ORU-OTHER"]["state"] == "failed", 30), report_rows(gw)
    assert "is not the patient of" in report_rows(gw)["ORU-OTHER"]["detail"]
