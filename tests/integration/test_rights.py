"""Patients' rights (docs/rights.md): oppositions, late withdrawal, consent hold and emergency
sharing, against two real Orthanc 1.10 + DICOMweb hubs: `archive` (the medico-legal archive,
every study) and `community` (shared: only studies no opposition covers).

The community hub sits behind a fault proxy (faultproxy.py), to see and to slow or break the
requests Passerelle sends it; withdrawals there use Orthanc's REST API (`withdraw =
"orthanc"`, `orthanc_url` defaulting to the URL without `/dicom-web`). Whether a study is at a
hub is asked the way the product confirms a withdrawal: QIDO-RS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

import datagen
from harness import Gateway, wait_until
from test_upload import (SITE_ISSUER, assert_hub_holds_exactly, ctl, gateway_with, make_study, proxies,  # noqa: F401
                         send, start_hub, status, study_entry, study_state, wait_study)

INS_OID = "1.2.250.1.213.1.4.10"  # INS-NIR of test identities


def two_hubs(start_hub, proxies, start_gateway, community: dict | None = None, consent: str | None = None,
             upload: dict | None = None):
    archive = start_hub("archive")
    community_hub = start_hub("community")
    proxy = proxies(community_hub)
    destinations = {
        "archive": {"url": archive.dicomweb_url},
        "community": {"url": proxy.url + "/dicom-web", "withdraw": "orthanc", **(community or {})},
    }
    tables = {"consent": {"default": consent}} if consent else None
    gw = gateway_with(start_gateway, destinations, upload=upload, tables=tables)
    return archive, community_hub, proxy, gw


def qido_finds(hub, study_uid: str) -> bool:
    return any(r.get("0020000D", {}).get("Value", [None])[0] == study_uid
               for r in hub.get_json(f"/dicom-web/studies?StudyInstanceUID={study_uid}") or [])


def with_ins(files: list[Path], ins: str) -> list[Path]:
    """Adds the INS to each file's Other Patient IDs Sequence, as a French PAS would."""
    for f in files:
        ds = dcmread(f)
        item = Dataset()
        item.PatientID = ins
        item.IssuerOfPatientID = INS_OID
        item.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = [item]
        ds.save_as(f, enforce_file_format=True)
    return files


def opposition(gw: Gateway, action: str, *selector: str, by: str = "DPO Martin", reason: str | None = None,
               check: bool = True):
    args = ["opposition", action, *selector, "--by", by]
    if reason:
        args += ["--reason", reason]
    return ctl(gw, *args, check=check)


def oppositions(gw: Gateway) -> dict:
    return json.loads(ctl(gw, "opposition", "list", "--json").stdout)


def withdrawal_state(gw: Gateway, study_uid: str) -> str | None:
    found = [w["state"] for w in oppositions(gw)["withdrawals"] if w["study_uid"] == study_uid]
    return found[0] if found else None


def audit_export(gw: Gateway, patient: str) -> list[dict]:
    return json.loads(ctl(gw, "audit", "export", "--patient", patient, "--format", "json").stdout)


def rights_status(gw: Gateway) -> dict:
    return status(gw)["rights"]


def test_opposed_studies_reach_the_archive_and_never_the_community(start_hub, proxies, start_gateway, tmp_path):
    archive, community, proxy, gw = two_hubs(start_hub, proxies, start_gateway)
    # Three oppositions registered before anything arrives: a patient of this site, an INS,
    # and patient 123 of another site (which must not stop this site's patient 123).
    opposition(gw, "add", "--patient", "IPP-OPPOSED", reason="courrier du 2 déc.")
    opposition(gw, "add", "--ins", "2850799123456")
    opposition(gw, "add", "--patient", "123", "--issuer", "CHRU-TOURS")
    opposed, opposed_files = make_study(tmp_path / "a", 6, patient=datagen.Patient("IPP-OPPOSED", "Opp^Anne", issuer=SITE_ISSUER))
    by_ins, ins_files = make_study(tmp_path / "b", 5, patient=datagen.Patient("IPP-INS", "Ins^Paul"))
    with_ins(ins_files, "2850799123456")
    same_id, same_id_files = make_study(tmp_path / "c", 4, patient=datagen.Patient("123", "Other^Site", issuer=SITE_ISSUER))
    free, free_files = make_study(tmp_path / "d", 3, patient=datagen.Patient("IPP-FREE", "Free^Jean"))
    send(gw, opposed_files + ins_files + same_id_files + free_files)

    everything = opposed_files + ins_files + same_id_files + free_files
    for study in (opposed, by_ins, same_id, free):
        wait_study(gw, study.study_uid, dest="archive")
    for study in (same_id, free):
        wait_study(gw, study.study_uid, dest="community")
    for study in (opposed, by_ins):
        assert study_state(gw, study.study_uid, "community") == "withheld"
        assert study_entry(gw, study.study_uid)["destinations"]["community"]["withheld"] == "opposition"
    assert_hub_holds_exactly(archive, everything)
    assert_hub_holds_exactly(community, same_id_files + free_files)
    # No chunk of the opposed studies was ever stored at the community (the audit trail has
    # one upload row per chunk stored, with its destination), while the others' were.
    for patient, study in (("IPP-OPPOSED", opposed), ("IPP-INS", by_ins)):
        uploads = [r for r in audit_export(gw, patient) if r["action"] == "upload" and study.study_uid in r["studies"]]
        assert {r["destination"] for r in uploads} == {"archive"}, uploads
    uploads = [r for r in audit_export(gw, "IPP-FREE") if r["action"] == "upload"]
    assert {r["destination"] for r in uploads} == {"archive", "community"}, uploads
    rights = rights_status(gw)
    assert rights["active_oppositions"] == 3
    assert rights["withheld"]["community"]["opposition"] == 2
    assert rights["shared_destinations"] == ["community"]
    # Opposed studies are withheld, not stuck: verified at the archive, they may be purged.
    assert rights["alarms"] == []


def test_late_opposition_withdraws_from_the_community_and_removal_shares_again(start_hub, proxies, start_gateway,
                                                                                 tmp_path):
    archive, community, proxy, gw = two_hubs(start_hub, proxies, start_gateway)
    study, files = make_study(tmp_path / "ct", 8, patient=datagen.Patient("IPP-LATE", "Late^Marie"))
    other, other_files = make_study(tmp_path / "other", 3, patient=datagen.Patient("IPP-OTHER", "Other^Luc"))
    send(gw, files + other_files)
    for s in (study, other):
        wait_study(gw, s.study_uid, dest="archive")
        wait_study(gw, s.study_uid, dest="community")
    assert qido_finds(community, study.study_uid)

    out = opposition(gw, "add", "--patient", "IPP-LATE", reason="opposition tardive")
    assert "1 withdrawal(s) queued" in out.stdout, out.stdout
    assert wait_until(lambda: withdrawal_state(gw, study.study_uid) == "withdrawn", 30), oppositions(gw)
    assert not qido_finds(community, study.study_uid)
    assert qido_finds(community, other.study_uid)
    assert_hub_holds_exactly(community, other_files)
    assert_hub_holds_exactly(archive, files + other_files)  # the archive keeps it
    assert any(r[0].startswith("DELETE /studies/") for r in proxy.requests), proxy.requests
    assert study_state(gw, study.study_uid, "community") == "withheld"
    time.sleep(2)  # nothing sends it back while the opposition stands
    assert not qido_finds(community, study.study_uid)

    # The history keeps the lifted opposition; the study is shared again from the spool.
    opposition(gw, "remove", "--patient", "IPP-LATE", reason="retrait de l'opposition")
    wait_study(gw, study.study_uid, dest="community")
    assert_hub_holds_exactly(community, files + other_files)
    listed = oppositions(gw)
    [o] = [o for o in listed["oppositions"] if o["value"] == "IPP-LATE"]
    assert o["removed_by"] == "DPO Martin" and o["removal_reason"] == "retrait de l'opposition"
    assert o["added_by"] == "DPO Martin" and o["issuer"] == SITE_ISSUER
    assert withdrawal_state(gw, study.study_uid) == "reshared"
    # Lifting an opposition that is not there is an error, not a silent no-op.
    out = opposition(gw, "remove", "--patient", "IPP-LATE", check=False)
    assert out.returncode != 0 and "no active opposition" in out.stderr, out

    # Every act is in the patient's access report, and the chain is intact.
    rows = audit_export(gw, "IPP-LATE")
    acts = [(r["action"], r["outcome"]) for r in rows]
    for act in ("oppositionAdded", "withdrawal", "oppositionRemoved", "upload", "instancesReceived"):
        assert (act, "success") in acts, acts
    added = next(r for r in rows if r["action"] == "oppositionAdded")
    assert added["user_name"] == "DPO Martin" and added["address"] == "local", added
    assert added["details"]["reason"] == "opposition tardive" and study.study_uid in added["studies"], added
    withdrawn = next(r for r in rows if r["action"] == "withdrawal")
    assert withdrawn["destination"] == "community" and withdrawn["studies"] == [study.study_uid], withdrawn
    assert withdrawn["details"]["method"] == "orthanc", withdrawn
    assert all(other.study_uid not in r["studies"] for r in rows)
    assert not any(r["action"].startswith("opposition") for r in audit_export(gw, "IPP-OTHER"))
    ctl(gw, "audit", "verify")


def test_an_opposition_during_the_upload_stops_the_community_chunks(start_hub, proxies, start_gateway, tmp_path):
    archive, community, proxy, gw = two_hubs(
        start_hub, proxies, start_gateway, upload={"chunk_max_instances": 4, "parallel": 1})
    proxy.delay(0.7)  # each community chunk takes a while
    study, files = make_study(tmp_path / "ct", 40)
    send(gw, files)
    assert wait_until(lambda: any(r[2] == "forwarded" for r in proxy.posts()), 30), proxy.requests
    opposition(gw, "add", "--study", study.study_uid)
    posts_at_opposition = len(proxy.posts())
    wait_study(gw, study.study_uid, dest="archive")
    assert wait_until(lambda: withdrawal_state(gw, study.study_uid) == "withdrawn", 60), oppositions(gw)
    # At most the chunk in flight went on; the other chunks never left.
    assert len(proxy.posts()) <= posts_at_opposition + 1, proxy.posts()
    assert len(proxy.posts()) < 10
    assert community.count_instances() == 0
    assert not qido_finds(community, study.study_uid)
    assert_hub_holds_exactly(archive, files)


def test_a_withdrawal_interrupted_by_kill_9_completes_after_restart(start_hub, proxies, start_gateway, tmp_path):
    archive, community, proxy, gw = two_hubs(start_hub, proxies, start_gateway)
    study, files = make_study(tmp_path / "ct", 5)
    send(gw, files)
    wait_study(gw, study.study_uid, dest="community")
    proxy.http_503(3600)  # the community answers nothing useful: the withdrawal keeps failing
    opposition(gw, "add", "--study", study.study_uid)
    assert wait_until(lambda: any(a["kind"] == "withdrawal_failing" for a in rights_status(gw)["alarms"]), 30), \
        rights_status(gw)
    assert rights_status(gw)["withdrawals"]["community"]["pending"] == 1
    gw.kill9()
    proxy.forward()
    gw.restart()
    assert wait_until(lambda: withdrawal_state(gw, study.study_uid) == "withdrawn", 60), oppositions(gw)
    assert not qido_finds(community, study.study_uid)
    assert_hub_holds_exactly(archive, files)
    assert rights_status(gw)["alarms"] == []


def test_manual_withdrawal_is_an_alarm_until_done_and_confirmed(start_hub, proxies, start_gateway, tmp_path):
    archive, community, proxy, gw = two_hubs(start_hub, proxies, start_gateway, community={"withdraw": "manual"})
    study, files = make_study(tmp_path / "ct", 3)
    send(gw, files)
    wait_study(gw, study.study_uid, dest="community")
    opposition(gw, "add", "--study", study.study_uid)

    def alarm_kinds():
        return [a["kind"] for a in rights_status(gw)["alarms"] if a["study_uid"] == study.study_uid]

    assert wait_until(lambda: alarm_kinds() == ["manual_withdrawal"], 15), rights_status(gw)
    assert qido_finds(community, study.study_uid)  # nothing deleted behind the operator's back
    # Reported done too early: QIDO-RS still finds it, so it is not withdrawn.
    ctl(gw, "opposition", "done", study.study_uid, "--by", "PACS admin")
    time.sleep(2)
    assert withdrawal_state(gw, study.study_uid) == "pending"
    # The operator deletes it at the hub, then reports it.
    code, _, body = community.request("POST", "/tools/lookup", body=study.study_uid.encode())
    assert code == 200, body
    for match in json.loads(body):
        assert community.request("DELETE", f"/studies/{match['ID']}")[0] == 200
    ctl(gw, "opposition", "done", study.study_uid, "--by", "PACS admin")
    assert wait_until(lambda: withdrawal_state(gw, study.study_uid) == "withdrawn", 30), oppositions(gw)
    assert alarm_kinds() == []


def test_consent_hold_informed_and_emergency_share(start_hub, proxies, start_gateway, tmp_path):
    archive, community, proxy, gw = two_hubs(start_hub, proxies, start_gateway, consent="hold")
    held, held_files = make_study(tmp_path / "a", 3, patient=datagen.Patient("IPP-HELD", "Held^Anne"))
    urgent, urgent_files = make_study(tmp_path / "b", 2, patient=datagen.Patient("IPP-URG", "Urg^Paul"))
    opposed, opposed_files = make_study(tmp_path / "c", 2, patient=datagen.Patient("IPP-OPP", "Opp^Luc"))
    send(gw, held_files + urgent_files + opposed_files)
    for s in (held, urgent, opposed):
        wait_study(gw, s.study_uid, dest="archive")
        assert study_state(gw, s.study_uid, "community") == "withheld"
    assert study_entry(gw, held.study_uid)["destinations"]["community"]["withheld"] == "consent"
    assert community.count_instances() == 0

    out = ctl(gw, "share", "--emergency", urgent.study_uid, "--reason", "polytraumatisé, transfert CHU", "--by", "Dr Urg")
    assert "shared" in out.stdout
    wait_study(gw, urgent.study_uid, dest="community")

    # An emergency never overrides an opposition.
    opposition(gw, "add", "--patient", "IPP-OPP")
    out = ctl(gw, "share", "--emergency", opposed.study_uid, "--reason", "urgence", "--by", "Dr Urg", check=False)
    assert out.returncode != 0 and "opposition" in out.stderr, out

    refused = [r for r in audit_export(gw, "IPP-OPP") if r["action"] == "emergencyShare"]
    assert [r["outcome"] for r in refused] == ["serious failure"], refused
    assert refused[0]["details"]["purpose"] == "emergency" and refused[0]["user_name"] == "Dr Urg"
    shared = [r for r in audit_export(gw, "IPP-URG") if r["action"] == "emergencyShare"]
    assert [(r["outcome"], r["details"]["reason"]) for r in shared] == [("success", "polytraumatisé, transfert CHU")]

    ctl(gw, "consent", "informed", "--patient", "IPP-HELD", "--by", "Secrétariat")
    wait_study(gw, held.study_uid, dest="community")
    assert_hub_holds_exactly(community, held_files + urgent_files)
    assert study_state(gw, opposed.study_uid, "community") == "withheld"
    assert_hub_holds_exactly(archive, held_files + urgent_files + opposed_files)
    informed = [r for r in audit_export(gw, "IPP-HELD") if r["action"] == "consentInformed"]
    assert len(informed) == 1 and informed[0]["user_name"] == "Secrétariat"
    assert held.study_uid in informed[0]["studies"]


def test_selectors_and_by_are_required(start_hub, proxies, start_gateway, tmp_path):
    archive, community, proxy, gw = two_hubs(start_hub, proxies, start_gateway)
    out = ctl(gw, "opposition", "add", "--patient", "X", check=False)
    assert out.returncode != 0 and "--by" in out.stderr
    out = ctl(gw, "opposition", "add", "--patient", "X", "--study", "1.2.3", "--by", "A", check=False)
    assert out.returncode != 0 and "exactly one" in out.stderr
    opposition(gw, "add", "--patient", "X")
    out = opposition(gw, "add", "--patient", "X", check=False)
    assert out.returncode != 0 and "already registered" in out.stderr


def test_studies_the_spool_purged_are_found_withdrawn_and_sent_again_from_the_archive(start_hub, proxies,
                                                                                      start_gateway, tmp_path):
    archive = start_hub("archive")
    community = start_hub("community")
    gw = gateway_with(start_gateway, {
        "archive": {"url": archive.dicomweb_url},
        "community": {"url": community.dicomweb_url, "withdraw": "orthanc"},
    }, spool_extra={"retention": "1s"})
    study, files = make_study(tmp_path / "old", 4, patient=datagen.Patient("IPP-OLD", "Old^Rose"))
    send(gw, files)
    wait_study(gw, study.study_uid, dest="community")
    assert wait_until(lambda: study_entry(gw, study.study_uid) is None, 30), "not purged"

    # The spool no longer knows the study: the community is searched for the patient's.
    opposition(gw, "add", "--patient", "IPP-OLD")
    assert wait_until(lambda: withdrawal_state(gw, study.study_uid) == "withdrawn", 30), oppositions(gw)
    assert community.count_instances() == 0
    assert_hub_holds_exactly(archive, files)
    assert rights_status(gw)["pending_sweeps"] == 0

    # Lifted: the study comes back to the community from the archive (WADO-RS, then STOW-RS).
    out = opposition(gw, "remove", "--patient", "IPP-OLD")
    assert "needs resend" in out.stdout, out.stdout
    assert wait_until(lambda: withdrawal_state(gw, study.study_uid) == "reshared", 30), oppositions(gw)
    assert_hub_holds_exactly(community, files)
    assert qido_finds(community, study.study_uid)
    assert rights_status(gw)["alarms"] == []
