"""Upload to the regional hub (docs/upload.md), against a real Orthanc 1.10 + DICOMweb plugin.

Every test starts its own hub(s) (tests/integration/orthanc.py), optionally behind a fault
proxy (faultproxy.py), and a passerelled whose [upload] timings are short (stable_after 1 s,
retries 200 ms .. 2 s). What the hub holds is read back by WADO-RS and compared byte for byte
with what the spool received; what the daemon thinks is read from `passerellectl spool list
--json`, `queue --json` and `status --json`.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import random
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage

import datagen
import harness
import rawdul
import tlsca
from faultproxy import FaultProxy, TlsServer
from harness import (Gateway, check_instance, current_by_sop, files_only_of, instance_bytes,
                     reclaimable, sop_uid, spool_list, storage_files, storescu, wait_until)
from orthanc import Orthanc

SITE_ISSUER = "CHR-ORLEANS"
UPLOAD = {"stable_after": "1s", "retry_min": "200ms", "retry_max": "2s"}


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture
def start_hub(tmp_path, request):
    """Factory: start_hub(name, **Orthanc options) -> a running Orthanc in tmp_path/name."""
    hubs: list[Orthanc] = []
    request.node._hubs = hubs

    def start(name: str = "hub", **kw) -> Orthanc:
        hub = Orthanc(tmp_path / name, **kw)
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:  # stop them together: Orthanc takes ~3 s to stop
        if hub.alive():
            hub.proc.send_signal(signal.SIGTERM)
    for hub in hubs:
        hub.stop()


@pytest.fixture
def proxies():
    started: list[FaultProxy] = []

    def start(hub: Orthanc, **kw) -> FaultProxy:
        p = FaultProxy("127.0.0.1", hub.http_port, **kw).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def gateway_with(start_gateway, destinations: dict, upload: dict | None = None, **config) -> Gateway:
    config.setdefault("site", {"issuer_of_patient_id": SITE_ISSUER})
    return start_gateway(upload={**UPLOAD, **(upload or {})}, destinations=destinations, **config)


# --------------------------------------------------------------------------
# reading the daemon


def ctl(gw: Gateway, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = [str(harness.passerellectl_path()), *args, "--config", str(gw.config_path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def status(gw: Gateway) -> dict:
    return json.loads(ctl(gw, "status", "--json").stdout)


def destination_status(gw: Gateway, name: str) -> dict:
    found = [d for d in status(gw)["destinations"] if d["name"] == name]
    assert len(found) == 1, f"destination {name} not in status"
    return found[0]


def queue(gw: Gateway) -> list[dict]:
    return json.loads(ctl(gw, "queue", "--json").stdout)


def study_entry(gw: Gateway, study_uid: str) -> dict | None:
    found = [s for s in queue(gw) if s["study_instance_uid"] == study_uid]
    assert len(found) <= 1
    return found[0] if found else None


def study_state(gw: Gateway, study_uid: str, dest: str = "archive") -> str | None:
    entry = study_entry(gw, study_uid)
    if entry is None:
        return None
    d = entry.get("destinations", {}).get(dest)
    return d["state"] if d else None


def deliveries(gw: Gateway, dest: str = "archive") -> dict[str, dict]:
    """SOP Instance UID -> its delivery to `dest` (instances routed there)."""
    return {uid: r["destinations"][dest] for uid, r in current_by_sop(spool_list(gw.spool)).items()
            if dest in r.get("destinations", {})}


def wait_study(gw: Gateway, study_uid: str, state: str = "verified", dest: str = "archive",
               timeout: float = 60) -> None:
    last = {}

    def reached():
        gw.check_alive()
        last["entry"] = study_entry(gw, study_uid)
        d = (last["entry"] or {}).get("destinations", {}).get(dest)
        return d is not None and d["state"] == state

    if not wait_until(reached, timeout, interval=0.25):
        raise AssertionError(
            f"study {study_uid} not {state} at {dest} after {timeout}s\nqueue entry: "
            f"{json.dumps(last.get('entry'), indent=1)}\nstatus: "
            f"{json.dumps([d for d in status(gw)['destinations'] if d['name'] == dest], indent=1)}")


# --------------------------------------------------------------------------
# data and sending


def dataset_bytes_of(part10: bytes) -> bytes:
    """The data set bytes after the File Meta Information of a Part-10 file in memory."""
    assert part10[128:132] == b"DICM" and part10[132:136] == b"\x02\x00\x00\x00"
    return part10[144 + int.from_bytes(part10[140:144], "little"):]


def read_bytes(part10: bytes):
    import io
    return dcmread(io.BytesIO(part10))


def make_study(directory: Path, count: int, *, patient: datagen.Patient | None = None,
               rows: int = 64, maker=datagen.make_ct) -> tuple[datagen.Study, list[Path]]:
    study = datagen.Study.new(patient or datagen.Patient("IPP1", "Durand^Anne", issuer=SITE_ISSUER))
    return study, [maker(Path(directory) / f"i{i:04d}.dcm", study, i, rows=rows, cols=rows)
                   for i in range(1, count + 1)]


def send(gw: Gateway, files, aet: str = "STORESCU") -> None:
    res = storescu(files, gw.port, aet=aet, aec=gw.ae_title)
    assert len(res.acked) == len(files), f"storescu: {res.failed}\n{res.output[-3000:]}"


def send_raw(gw: Gateway, sop_class: str, ts: str, sop_instance: str, dataset: bytes) -> int:
    """One C-STORE of hand-made data set bytes; returns the status."""
    with rawdul.RawAssociation(gw.port) as raw:
        ac = raw.associate(called=gw.ae_title, contexts=[(sop_class, [ts])])
        assert ac.accepted.get(1) == ts, ac
        raw.send(rawdul.p_data(1, rawdul.c_store_rq(sop_class, sop_instance), command=True, last=True))
        raw.send_dataset(1, dataset, 16384)
        status_ = rawdul.status_of(raw.recv_command(timeout=30))
        raw.send(rawdul.release_rq())
        return status_


def assert_at_hub_identical(hub: Orthanc, gw: Gateway, files, dest: str = "archive") -> None:
    """Every file is at the hub, byte for byte what the spool received (WADO-RS), and its data
    set is the one sent by the modality; its delivery to `dest` is `stored` with
    sent_sha256 = sha256."""
    records = current_by_sop(spool_list(gw.spool))
    for f in files:
        uid = sop_uid(f)
        rec = records[uid]
        at_hub = hub.instance_file(uid, rec["study_instance_uid"], rec["series_instance_uid"])
        spooled = instance_bytes(rec)  # [offset, offset + size) of its store/ file or segment
        assert at_hub == spooled, f"{f.name}: the hub's file differs from the spooled one"
        assert rec["transfer_syntax_uid"] == datagen.file_meta(f).TransferSyntaxUID
        original = datagen.dataset_bytes(f)
        if rec["transfer_syntax_uid"] == datagen.TS_DEFLATED and len(original) % 2:
            original += b"\x00"  # PS3.5 A.5: an odd deflated stream travels with a trailing NUL
        assert dataset_bytes_of(at_hub) == original, f"{f.name}: data set changed"
        d = rec["destinations"][dest]
        assert d["state"] == "stored", (f.name, d)
        assert d["sent_sha256"] == rec["sha256"] == hashlib.sha256(at_hub).hexdigest(), (f.name, d)


def assert_hub_holds_exactly(hub: Orthanc, files) -> None:
    expected = {sop_uid(f) for f in files}
    held = hub.instance_uids()
    assert held == expected, (f"missing at the hub: {sorted(expected - held)[:5]}, "
                              f"unexpected: {sorted(held - expected)[:5]}")
    assert hub.count_instances() == len(expected)


# --------------------------------------------------------------------------
# basic delivery


def test_a_study_is_uploaded_in_chunks_verified_and_byte_identical(start_hub, proxies, start_gateway,
                                                                   tmp_path):
    hub = start_hub()
    proxy = proxies(hub)  # plain forwarding, to see the requests
    gw = gateway_with(start_gateway, {"archive": {"url": proxy.url + "/dicom-web"}},
                      upload={"chunk_max_instances": 8, "chunk_max_bytes": "100KiB"})
    study, files = make_study(tmp_path / "ct", 40, rows=128)  # ~33 KB each
    big = datagen.make_ct(tmp_path / "big.dcm", study, 41, rows=256, cols=256)  # ~131 KB
    files.append(big)
    # The whole study is queued before anything is sent, so that chunks are full.
    ctl(gw, "pause", "archive")
    send(gw, files)
    ctl(gw, "resume", "archive")
    wait_study(gw, study.study_uid)

    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)
    assert all(d["attempts"] == 1 and d["reason"] is None and d["next_at"] is None
               for d in deliveries(gw).values())

    posts = [p for p in proxy.posts() if p[2] == "forwarded"]
    assert len(posts) == len(proxy.posts()), proxy.posts()
    big_size = len(instance_bytes(current_by_sop(spool_list(gw.spool))[sop_uid(big)]))
    small = sorted(nbytes for _, nbytes, _ in posts if nbytes <= 100 * 1024 + 4096)
    alone = [nbytes for _, nbytes, _ in posts if nbytes > 100 * 1024 + 4096]
    assert len(alone) == 1 and big_size < alone[0] < big_size + 4096, \
        f"the instance larger than chunk_max_bytes travels alone: {posts}"
    assert len(small) == 14, f"40 instances of 33 KB in chunks of at most 100 KiB: {small}"

    entry = study_entry(gw, study.study_uid)
    assert entry["destinations"]["archive"]["instances"] == {"stored": 41}
    dest = destination_status(gw, "archive")
    assert dest["health"] == "ok" and dest["paused"] is False
    assert dest["url"] == proxy.url + "/dicom-web"
    assert dest["instances"]["stored"]["instances"] == 41
    assert dest["instances"]["stored"]["bytes"] == sum(len(instance_bytes(r))
                                                       for r in spool_list(gw.spool))
    assert dest["studies"]["verified"] == 1
    assert dest.get("last_success_at")


# --------------------------------------------------------------------------
# IssuerOfPatientID


def _without_issuer(raw: bytes, ts: str) -> bytes:
    """The data set bytes without its (0010,0021) element (explicit/implicit LE, explicit BE)."""
    data = dataset_bytes_of(raw)
    if ts == datagen.TS_IMPLICIT_LE:
        head, fmt, size = b"\x10\x00\x21\x00", "<I", 4
    elif ts == datagen.TS_EXPLICIT_BE:
        head, fmt, size = b"\x00\x10\x00\x21LO", ">H", 2
    else:
        head, fmt, size = b"\x10\x00\x21\x00LO", "<H", 2
    i = data.find(head)
    if i < 0:
        return data
    at = i + len(head)
    length = struct.unpack(fmt, data[at:at + size])[0]
    return data[:i] + data[at + size + length:]


def test_issuer_of_patient_id_is_filled_in_and_nothing_else_changes(start_hub, start_gateway, tmp_path):
    hub = start_hub()
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url}},
                      upload={"fill_issuer_of_patient_id": True})
    bare_study, bare = make_study(tmp_path / "bare", 12,
                                  patient=datagen.Patient("IPP2", "Petit^Marc", issuer=None))
    empty = [datagen.with_modified_attribute(f, tmp_path / "empty" / f.name, IssuerOfPatientID="")
             for f in make_study(tmp_path / "e0", 3, patient=datagen.Patient("IPP3", "Roux^Lea"))[1]]
    empty_study = datagen.read(empty[0]).StudyInstanceUID
    other_study, other = make_study(tmp_path / "other", 6,
                                    patient=datagen.Patient("T-99", "Blanc^Eve", issuer="CHRU-TOURS"))
    # Other encodings, received as they are: implicit VR LE and explicit VR BE are filled in,
    # a deflated data set is sent unchanged.
    ts_study = datagen.Study.new(datagen.Patient("IPP5", "Leroy^Paul", issuer=None))
    by_ts = datagen.make_ct_all_transfer_syntaxes(
        tmp_path / "ts", ts_study, [datagen.TS_IMPLICIT_LE, datagen.TS_EXPLICIT_BE, datagen.TS_DEFLATED])
    deflated = by_ts.pop(datagen.TS_DEFLATED)
    assert "IssuerOfPatientID" not in datagen.read(bare[0])
    assert datagen.read(empty[0]).IssuerOfPatientID == ""
    send(gw, bare + empty + other)
    for f in [*by_ts.values(), deflated]:
        res = harness.storescu_exact_ts(f, gw.port, tmp_path, aec=gw.ae_title)
        assert res.acked == [str(f)], res.output[-2000:]
    for uid in (bare_study.study_uid, empty_study, other_study.study_uid, ts_study.study_uid):
        wait_study(gw, uid)
    assert_hub_holds_exactly(hub, bare + empty + other + [*by_ts.values(), deflated])

    records = current_by_sop(spool_list(gw.spool))
    for f in bare + empty + list(by_ts.values()):
        rec = records[sop_uid(f)]
        at_hub = hub.instance_file(sop_uid(f), rec["study_instance_uid"], rec["series_instance_uid"])
        sent = read_bytes(at_hub)
        assert sent.IssuerOfPatientID == SITE_ISSUER, f.name
        assert sent["IssuerOfPatientID"].VR == "LO"
        original = datagen.read(f)
        del sent.IssuerOfPatientID
        if "IssuerOfPatientID" in original:
            del original.IssuerOfPatientID
        assert sent == original, f"{f.name}: elements other than IssuerOfPatientID changed"
        ts = original.file_meta.TransferSyntaxUID
        assert rec["transfer_syntax_uid"] == ts
        assert _without_issuer(at_hub, ts) == _without_issuer(f.read_bytes(), ts), \
            f"{f.name}: the encoding of other elements changed"
        assert sent.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        # the spool keeps what it received; both hashes are recorded
        d = rec["destinations"]["archive"]
        spooled = check_instance(rec, gw.spool)  # hashes to sha256, parses completely
        assert rec["sha256"] != d["sent_sha256"] == hashlib.sha256(at_hub).hexdigest(), (f.name, d)
        assert datagen.dataset_bytes_of(spooled) == datagen.dataset_bytes(f)
    # those with an issuer of their own travel untouched, and so does the deflated one
    assert_at_hub_identical(hub, gw, other + [deflated])
    assert "IssuerOfPatientID" not in read_bytes(hub.instance_file(sop_uid(deflated)))
    assert read_bytes(hub.instance_file(sop_uid(other[0]))).IssuerOfPatientID == "CHRU-TOURS"


def test_without_fill_instances_without_issuer_travel_untouched(start_hub, start_gateway, tmp_path):
    hub = start_hub()
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url}},
                      upload={"fill_issuer_of_patient_id": False})
    study, files = make_study(tmp_path / "bare", 8, patient=datagen.Patient("IPP4", "Noir^Jo", issuer=None))
    send(gw, files)
    wait_study(gw, study.study_uid)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)
    assert "IssuerOfPatientID" not in read_bytes(hub.instance_file(sop_uid(files[0])))


# --------------------------------------------------------------------------
# two destinations, routing, one down


def test_studies_wait_without_destination_until_one_is_configured(start_hub, start_gateway, tmp_path):
    hub = start_hub()
    gw = start_gateway(site={"issuer_of_patient_id": SITE_ISSUER}, upload=dict(UPLOAD))
    study, files = make_study(tmp_path / "ct", 12)
    send(gw, files)
    time.sleep(2)
    assert status(gw)["destinations"] == []
    assert all(not r.get("destinations") for r in spool_list(gw.spool)), spool_list(gw.spool)[0]
    gw.config.destinations = {"archive": {"url": hub.dicomweb_url}}
    gw.config_path.write_text(gw.config.toml())
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in gw.log_text(), 10), gw.log_tail()
    wait_study(gw, study.study_uid, timeout=30)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)


def test_two_destinations_routing_and_one_down_never_stalls_the_other(start_hub, start_gateway, tmp_path):
    archive, community = start_hub("archive"), start_hub("community")
    gw = gateway_with(start_gateway, {
        "archive": {"url": archive.dicomweb_url},
        "community": {"url": community.dicomweb_url, "modalities": ["CT"], "calling_aets": ["CTSCAN"]},
    }, upload={"connect_timeout": "2s"})
    ct_study, ct = make_study(tmp_path / "ct", 20)
    mr_study, mr = make_study(tmp_path / "mr", 10, maker=datagen.make_mr)
    other_study, other_ct = make_study(tmp_path / "ct-other", 8)
    send(gw, ct + mr, aet="CTSCAN")
    send(gw, other_ct, aet="OTHERCT")
    for uid in (ct_study.study_uid, mr_study.study_uid, other_study.study_uid):
        wait_study(gw, uid, dest="archive")
    wait_study(gw, ct_study.study_uid, dest="community")

    assert_hub_holds_exactly(archive, ct + mr + other_ct)
    assert_at_hub_identical(archive, gw, ct + mr + other_ct, dest="archive")
    assert_hub_holds_exactly(community, ct)
    assert_at_hub_identical(community, gw, ct, dest="community")
    routed = deliveries(gw, "community")
    assert set(routed) == {sop_uid(f) for f in ct}, "MR (modality) and OTHERCT (calling AE) not routed"
    assert set(study_entry(gw, mr_study.study_uid)["destinations"]) == {"archive"}

    # The community hub goes down: the archive goes on.
    community.stop()
    late_study, late = make_study(tmp_path / "late", 15)
    send(gw, late, aet="CTSCAN")
    wait_study(gw, late_study.study_uid, dest="archive", timeout=30)
    assert_at_hub_identical(archive, gw, late, dest="archive")
    assert wait_until(lambda: destination_status(gw, "community")["health"] == "failing", 15)
    assert wait_until(lambda: destination_status(gw, "community").get("next_retry_at"), 10), \
        destination_status(gw, "community")
    down = destination_status(gw, "community")
    assert down["last_error"] and down["last_error"]["message"] and down["last_error"]["at"], down
    assert destination_status(gw, "archive")["health"] in ("ok", "idle")
    assert study_state(gw, late_study.study_uid, "community") == "uploading"
    states = {d["state"] for uid, d in deliveries(gw, "community").items() if uid in {sop_uid(f) for f in late}}
    assert states <= {"queued", "retry", "in_flight"}, states

    # Back on the same ports: it catches up.
    community.start()
    wait_study(gw, late_study.study_uid, dest="community", timeout=30)
    assert_hub_holds_exactly(community, ct + late)
    assert_at_hub_identical(community, gw, ct + late, dest="community")
    assert wait_until(lambda: destination_status(gw, "community")["health"] in ("ok", "idle"), 10)


# --------------------------------------------------------------------------
# faults between the gateway and the hub


def fault_setup(start_hub, proxies, start_gateway, upload=None):
    hub = start_hub()
    proxy = proxies(hub)
    gw = gateway_with(start_gateway, {"archive": {"url": proxy.url + "/dicom-web"}},
                      upload={"chunk_max_instances": 10, **(upload or {})})
    return hub, proxy, gw


def test_connection_cut_in_the_middle_of_a_chunk(start_hub, proxies, start_gateway, tmp_path):
    hub, proxy, gw = fault_setup(start_hub, proxies, start_gateway)
    study, files = make_study(tmp_path / "ct", 40, rows=128)  # chunks of 10 x 33 KB
    ctl(gw, "pause", "archive")  # so that the chunks are full ones
    send(gw, files)
    proxy.cut_after(150_000, times=3)
    ctl(gw, "resume", "archive")
    wait_study(gw, study.study_uid)
    assert proxy.stats()["cut"] == 3, proxy.stats()
    assert [r for r in proxy.requests if r[2] == "cut"][0][0].startswith("POST "), proxy.requests
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)
    # Every cut STOW-RS request was sent again: either at once on a new connection (counted
    # within the same attempt) or as a later attempt.
    posts = proxy.posts()
    assert len([r for r in posts if r[2] == "forwarded"]) >= 4, posts


def test_responses_lost_after_the_hub_stored_are_resent_without_duplicates(start_hub, proxies,
                                                                           start_gateway, tmp_path):
    hub, proxy, gw = fault_setup(start_hub, proxies, start_gateway)
    study, files = make_study(tmp_path / "ct", 30)
    proxy.drop_responses(times=2)
    send(gw, files)
    wait_study(gw, study.study_uid)
    assert proxy.stats()["dropped_responses"] == 2
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)


def test_503_for_a_few_seconds(start_hub, proxies, start_gateway, tmp_path):
    hub, proxy, gw = fault_setup(start_hub, proxies, start_gateway)
    study, files = make_study(tmp_path / "ct", 30)
    proxy.http_503(6.0)
    t0 = time.monotonic()
    send(gw, files)
    assert wait_until(lambda: destination_status(gw, "archive")["health"] == "failing", 5), \
        destination_status(gw, "archive")
    failing = destination_status(gw, "archive")
    assert "503" in failing["last_error"]["message"], failing["last_error"]
    assert time.monotonic() - t0 < 6.0, "too slow to observe the 503 window"
    assert hub.count_instances() == 0
    assert all(d["state"] != "rejected" for d in deliveries(gw).values()), "a 503 is not a rejection"
    wait_study(gw, study.study_uid, timeout=30)
    assert proxy.stats()["answered_503"] >= 1
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)
    assert destination_status(gw, "archive")["health"] in ("ok", "idle")


def test_slow_responses_and_request_timeouts(start_hub, proxies, start_gateway, tmp_path):
    hub, proxy, gw = fault_setup(start_hub, proxies, start_gateway, upload={"request_timeout": "2s"})
    study, files = make_study(tmp_path / "ct", 30)
    proxy.delay(3.5)  # longer than request_timeout: every request times out
    send(gw, files)
    assert wait_until(lambda: destination_status(gw, "archive")["health"] == "failing", 15)
    failing = destination_status(gw, "archive")
    message = failing["last_error"]["message"].lower()
    assert "time" in message or "deadline" in message, failing["last_error"]
    assert study_state(gw, study.study_uid) != "verified"
    assert all(d["state"] != "rejected" for d in deliveries(gw).values())
    proxy.delay(0.8)  # slow but within the timeout
    wait_study(gw, study.study_uid, timeout=60)
    assert proxy.stats()["delayed"] >= 3
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)


def test_hub_down_for_the_whole_send_then_up(start_hub, proxies, start_gateway, tmp_path):
    hub, proxy, gw = fault_setup(start_hub, proxies, start_gateway, upload={"connect_timeout": "2s"})
    proxy.down()
    study, files = make_study(tmp_path / "ct", 30)
    send(gw, files)
    assert wait_until(lambda: destination_status(gw, "archive")["health"] == "failing", 10)
    assert wait_until(lambda: destination_status(gw, "archive").get("next_retry_at"), 10), \
        destination_status(gw, "archive")
    time.sleep(3)  # well past stable_after and several retries
    down = destination_status(gw, "archive")
    assert down["health"] == "failing" and down["last_error"]["message"], down
    assert hub.count_instances() == 0
    assert study_state(gw, study.study_uid) == "uploading"
    states = {d["state"] for d in deliveries(gw).values()}
    assert states <= {"queued", "retry", "in_flight"}, states
    assert max(d["attempts"] for d in deliveries(gw).values()) >= 2, "retried while down"
    proxy.up()
    wait_study(gw, study.study_uid, timeout=30)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)


# --------------------------------------------------------------------------
# refusals


def encapsulated_with_defined_length(path: Path, study: datagen.Study) -> tuple[str, bytes]:
    """An RLE instance whose Pixel Data has a defined length (PS3.5 A.4 wants undefined):
    passerelled stores it as received, Orthanc's parser refuses it (STOW-RS 400)."""
    ts = datagen.TS_RLE
    f = datagen.make_ct_all_transfer_syntaxes(path, study, [ts], rows=16, cols=16)[ts]
    data = datagen.dataset_bytes(f)
    i = data.index(struct.pack("<HH", 0x7FE0, 0x0010))
    assert data[i + 4:i + 12] == b"OB\x00\x00\xff\xff\xff\xff"
    data = data[:i + 8] + struct.pack("<I", len(data) - i - 12) + data[i + 12:]
    return sop_uid(f), data


def test_an_instance_the_hub_refuses_is_rejected_alone_and_retry_requeues_it(start_hub, start_gateway,
                                                                             tmp_path):
    hub = start_hub()
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url}},
                      upload={"chunk_max_instances": 50, "stable_after": "2s"})
    study, files = make_study(tmp_path / "ct", 20)
    bad_uid, bad = encapsulated_with_defined_length(tmp_path / "bad", study)
    assert send_raw(gw, CTImageStorage, datagen.TS_RLE, bad_uid, bad) == 0x0000
    send(gw, files)
    wait_study(gw, study.study_uid, state="rejected")

    by_uid = deliveries(gw)
    assert by_uid[bad_uid]["state"] == "rejected" and by_uid[bad_uid]["reason"], by_uid[bad_uid]
    assert all(by_uid[sop_uid(f)]["state"] == "stored" for f in files)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)
    entry = study_entry(gw, study.study_uid)["destinations"]["archive"]
    assert entry["instances"] == {"stored": 20, "rejected": 1}, entry
    dest = destination_status(gw, "archive")
    assert dest["instances"]["rejected"]["instances"] == 1 and dest["studies"]["rejected"] == 1
    assert dest["health"] != "failing", "one refused instance does not make the hub failing"

    attempts = by_uid[bad_uid]["attempts"]
    time.sleep(2.5)  # rejected is final: not retried on its own
    assert deliveries(gw)[bad_uid] == by_uid[bad_uid]

    ctl(gw, "retry", study.study_uid)
    assert wait_until(lambda: deliveries(gw)[bad_uid]["attempts"] > attempts, 15), deliveries(gw)[bad_uid]
    wait_study(gw, study.study_uid, state="rejected")
    again = deliveries(gw)[bad_uid]
    assert again["state"] == "rejected" and again["reason"]
    assert hub.count_instances() == 20


def test_verification_requeues_what_the_hub_acknowledged_but_does_not_hold(start_hub, start_gateway,
                                                                           tmp_path):
    """Orthanc's ReceivedInstanceFilter returning false drops an instance but STOW-RS still
    lists it in ReferencedSOPSequence: only QIDO-RS verification can notice."""
    lua = tmp_path / "filter.lua"
    lua.write_text("function ReceivedInstanceFilter(dicom, origin, info)\n"
                   "  return dicom.ImageComments ~= 'DROP'\nend\n")
    hub = start_hub(extra_config={"LuaScripts": [str(lua)]})
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url}})
    study, files = make_study(tmp_path / "ct", 10)
    files[4] = datagen.with_modified_attribute(files[4], tmp_path / "dropped.dcm", ImageComments="DROP")
    send(gw, files)
    dropped = sop_uid(files[4])
    assert wait_until(lambda: deliveries(gw)[dropped]["attempts"] >= 2, 20), deliveries(gw)[dropped]
    assert study_state(gw, study.study_uid) in ("uploading", "verifying")
    assert hub.count_instances() == 9

    hub.stop()
    hub.extra_config = {}
    hub.start()
    wait_study(gw, study.study_uid, timeout=30)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)


# --------------------------------------------------------------------------
# streaming and late instances


def test_upload_starts_before_the_study_is_complete_and_a_late_instance_reopens_it(start_hub,
                                                                                  start_gateway, tmp_path):
    hub = start_hub()
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url}},
                      upload={"stable_after": "4s", "chunk_max_instances": 5})
    study, files = make_study(tmp_path / "ct", 41)
    first, second, late = files[:20], files[20:40], files[40]
    send(gw, first)
    t1 = time.monotonic()  # the study is "receiving" until t1 + 4 s
    assert wait_until(lambda: hub.count_instances() > 0, 3), "nothing uploaded within stable_after"
    assert time.monotonic() - t1 < 3.5, "too slow to observe the study while it is receiving"
    assert study_state(gw, study.study_uid) == "receiving"
    send(gw, second)
    assert study_state(gw, study.study_uid) == "receiving"
    wait_study(gw, study.study_uid, timeout=30)
    assert_hub_holds_exactly(hub, first + second)

    send(gw, [late])
    assert study_state(gw, study.study_uid) in ("receiving", "uploading"), "a late instance re-opens"
    wait_study(gw, study.study_uid, timeout=30)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)
    assert study_entry(gw, study.study_uid)["destinations"]["archive"]["instances"] == {"stored": 41}


# --------------------------------------------------------------------------
# retention


def test_verified_studies_are_purged_after_retention_unverified_ones_stay(start_hub, start_gateway,
                                                                          tmp_path):
    hub = start_hub()
    nowhere = f"http://127.0.0.1:{harness.free_port()}/dicom-web"
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url},
                                      "community": {"url": nowhere, "modalities": ["MR"]}},
                      # small segments: the CT instances fill segments of their own
                      spool_extra={"retention": "2s", "segment_size": "1MiB"})
    ct_study, ct = make_study(tmp_path / "ct", 10, rows=512)
    mr_study, mr = make_study(tmp_path / "mr", 6, maker=datagen.make_mr)
    send(gw, ct + mr)
    wait_study(gw, ct_study.study_uid)
    wait_study(gw, mr_study.study_uid, dest="archive")
    listed = current_by_sop(spool_list(gw.spool))
    ct_records = [listed[sop_uid(f)] for f in ct]
    # The files that must go with the CT study: in the store/ layout its own files; in the
    # journal layout the segments holding CT instances only (a segment shared with an MR one,
    # or still being appended to, stays).
    ct_files = reclaimable(gw.spool, files_only_of(ct_records, [listed[sop_uid(f)] for f in mr]))
    assert len(ct_files) >= 5, f"the CT instances should fill segments of their own: {sorted(ct_files)}"
    verified_at = study_entry(gw, ct_study.study_uid)["destinations"]["archive"]["verified_at"]
    verified_epoch = calendar.timegm(time.strptime(verified_at[:19], "%Y-%m-%dT%H:%M:%S"))

    assert wait_until(lambda: study_entry(gw, ct_study.study_uid) is None, 30), \
        "verified study not purged after retention"
    # (verified_at has whole seconds)
    assert time.time() - verified_epoch >= 2.0 - 1.0, "purged before its retention"
    records = current_by_sop(spool_list(gw.spool, revisions=True))
    assert not {sop_uid(f) for f in ct} & set(records), "purged study still listed"
    assert wait_until(lambda: not [p for p in ct_files if p.exists()], 10), \
        f"purged instances' files still in the spool: {sorted(p for p in ct_files if p.exists())}"
    assert_hub_holds_exactly(hub, ct + mr)

    # MR is verified at the archive but not at the (unreachable) community: it stays.
    time.sleep(3)
    assert study_state(gw, mr_study.study_uid, "community") not in (None, "verified")
    kept = current_by_sop(spool_list(gw.spool))
    assert {sop_uid(f) for f in mr} <= set(kept)
    for f in mr:  # their bytes are untouched by the purge of the segments' other instances
        check_instance(kept[sop_uid(f)], gw.spool)
    # no storage file is left but those of the kept instances (and, in the journal layout,
    # the newest segment, which may still be appended to)
    in_use = {Path(r["path"]).resolve() for r in spool_list(gw.spool, revisions=True)}
    left = {p.resolve() for p in storage_files(gw.spool)} - in_use
    assert not reclaimable(gw.spool, left), f"files of purged instances left: {sorted(left)}"


# --------------------------------------------------------------------------
# pause, resume, urgent


def test_pause_survives_a_restart_resume_sends_and_urgent_goes_first(start_hub, proxies, start_gateway,
                                                                     tmp_path):
    hub = start_hub()
    proxy = proxies(hub)
    gw = gateway_with(start_gateway, {"archive": {"url": proxy.url + "/dicom-web"}},
                      upload={"parallel": 1, "chunk_max_instances": 5})
    ctl(gw, "pause", "archive")
    paused = destination_status(gw, "archive")
    assert paused["paused"] is True and paused["health"] == "paused"

    old_study, old = make_study(tmp_path / "old", 30)
    send(gw, old)
    time.sleep(3)  # past stable_after
    assert hub.count_instances() == 0 and proxy.stats()["requests"] == 0
    assert {d["state"] for d in deliveries(gw).values()} == {"queued"}
    assert study_state(gw, old_study.study_uid) == "uploading"

    gw.terminate()
    gw.restart()
    assert destination_status(gw, "archive")["paused"] is True, "pause is kept across restarts"
    new_study, new = make_study(tmp_path / "new", 30)
    send(gw, new)
    time.sleep(2)
    assert hub.count_instances() == 0 and proxy.stats()["requests"] == 0

    ctl(gw, "urgent", new_study.study_uid)
    assert study_entry(gw, new_study.study_uid)["urgent"] is True
    assert study_entry(gw, old_study.study_uid)["urgent"] is False
    proxy.delay(0.3)  # ~0.3 s per chunk of 5: the order is visible
    ctl(gw, "resume", "archive")
    assert destination_status(gw, "archive")["paused"] is False

    def new_all_stored():
        return study_entry(gw, new_study.study_uid)["destinations"]["archive"]["instances"] == {"stored": 30}

    assert wait_until(new_all_stored, 60, interval=0.05)
    old_stored = study_entry(gw, old_study.study_uid)["destinations"]["archive"]["instances"].get("stored", 0)
    assert old_stored <= 5, f"the urgent study did not go first: {old_stored} of the older one stored"
    wait_study(gw, new_study.study_uid, timeout=30)
    wait_study(gw, old_study.study_uid, timeout=60)
    assert_hub_holds_exactly(hub, old + new)
    assert_at_hub_identical(hub, gw, old + new)


# --------------------------------------------------------------------------
# crashes


def test_kill_9_during_upload_ten_times_loses_and_duplicates_nothing(start_hub, proxies, start_gateway,
                                                                     tmp_path):
    hub = start_hub()
    proxy = proxies(hub)
    gw = gateway_with(start_gateway, {"archive": {"url": proxy.url + "/dicom-web"}},
                      upload={"parallel": 2, "chunk_max_instances": 3})
    studies, files = [], []
    for n in range(3):
        study, fs = make_study(tmp_path / f"s{n}", 40, rows=96,
                               patient=datagen.Patient(f"K{n}", "Crash^Test", issuer=SITE_ISSUER))
        studies.append(study)
        files += fs
    ctl(gw, "pause", "archive")
    send(gw, files)
    # 40 chunks of 3, two at a time: ~24 s of upload without kills, so that ten restarts
    # (slower on a loaded machine) all land before its end.
    proxy.delay(1.2)
    ctl(gw, "resume", "archive")

    def stored() -> int:
        return sum(d["state"] == "stored" for d in deliveries(gw).values())

    rng = random.Random(1234)
    mid_upload_kills = 0
    for round_ in range(10):
        before = stored()
        # the upload is moving (one more chunk acknowledged), then a random moment
        assert wait_until(lambda: stored() > before, 30), f"round {round_}: no progress"
        time.sleep(rng.uniform(0.0, 0.8))
        in_progress = stored() < len(files)
        gw.kill9()
        mid_upload_kills += in_progress
        gw.restart()
    assert mid_upload_kills == 10, "every kill should land while the upload is going on"

    proxy.delay(0)
    for study in studies:
        wait_study(gw, study.study_uid, timeout=90)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)


# --------------------------------------------------------------------------
# TLS


def test_mutual_tls_wrong_client_certificate_keeps_everything_until_fixed(start_hub, proxies,
                                                                          start_gateway, tmp_path):
    pki = tlsca.make_pki(tmp_path / "pki")
    hub = start_hub()
    proxy = proxies(hub, tls=TlsServer(pki.server_cert, pki.server_key, client_ca=pki.ca_cert,
                                       require_client_cert=True))
    url = proxy.url + "/dicom-web"
    wrong = {"url": url, "ca": str(pki.ca_cert), "client_cert": str(pki.wrong_client_cert),
             "client_key": str(pki.wrong_client_key)}
    right = dict(wrong, client_cert=str(pki.client_cert), client_key=str(pki.client_key))
    # The community's server certificate is checked against a CA that did not sign it.
    untrusted = dict(right, ca=str(pki.wrong_ca_cert))
    gw = gateway_with(start_gateway, {"archive": wrong, "community": untrusted},
                      upload={"connect_timeout": "2s"})

    study, files = make_study(tmp_path / "ct", 20)
    send(gw, files)
    for name in ("archive", "community"):
        assert wait_until(lambda: destination_status(gw, name)["health"] == "failing", 15), \
            destination_status(gw, name)
    time.sleep(2)
    for name in ("archive", "community"):
        failing = destination_status(gw, name)
        assert failing["health"] == "failing", failing
        message = (failing.get("last_error") or {}).get("message", "")
        assert any(w in message.lower() for w in ("tls", "ssl", "certificate", "handshake")), (name, message)
        states = {d["state"] for d in deliveries(gw, name).values()}
        assert states <= {"queued", "retry", "in_flight"}, (name, states)
    assert proxy.stats()["tls_failures"] >= 1 or proxy.stats()["forwarded"] == 0
    assert hub.count_instances() == 0
    assert len(current_by_sop(spool_list(gw.spool))) == 20, "nothing dropped"

    gw.config.destinations["archive"] = right
    gw.config_path.write_text(gw.config.toml())
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in gw.log_text(), 10), gw.log_tail()
    wait_study(gw, study.study_uid, timeout=30)
    assert_hub_holds_exactly(hub, files)
    assert_at_hub_identical(hub, gw, files)

    ok = destination_status(gw, "archive")
    assert ok["health"] in ("ok", "idle")
    expires = ok.get("client_certificate_expires_at")
    assert expires, ok
    not_after = time.strptime(tlsca.not_after(pki.client_cert), "%b %d %H:%M:%S %Y %Z")
    assert expires.startswith(time.strftime("%Y-%m-%d", not_after)), (expires, not_after)
    assert destination_status(gw, "community")["health"] == "failing"
    assert study_state(gw, study.study_uid, "community") != "verified"


# --------------------------------------------------------------------------
# bandwidth


def test_bandwidth_cap_paces_the_upload(start_hub, proxies, start_gateway, tmp_path):
    hub = start_hub()
    proxy = proxies(hub)
    gw = gateway_with(start_gateway, {"archive": {"url": proxy.url + "/dicom-web"}},
                      upload={"bandwidth": "2Mbit", "chunk_max_instances": 4})
    study, files = make_study(tmp_path / "ct", 40, rows=128)  # ~1.3 MB: 5.4 s at 2 Mbit/s
    ctl(gw, "pause", "archive")
    send(gw, files)
    t0 = time.monotonic()
    ctl(gw, "resume", "archive")
    assert wait_until(lambda: hub.count_instances() == 40, 60, interval=0.05)
    elapsed = time.monotonic() - t0
    sent_bits = 8 * sum(nbytes for _, nbytes, _ in proxy.posts())
    assert sent_bits > 40 * 32768 * 8
    assert elapsed >= 0.7 * sent_bits / 2e6, f"{sent_bits / elapsed / 1e6:.1f} Mbit/s with a 2 Mbit cap"
    assert elapsed <= 3 * sent_bits / 2e6, f"only {sent_bits / elapsed / 1e6:.2f} Mbit/s of 2"
    wait_study(gw, study.study_uid)
    assert_at_hub_identical(hub, gw, files)


# --------------------------------------------------------------------------
# configuration errors


def _line_of(text: str, needle: str, after: str) -> int:
    lines = text.splitlines()
    start = lines.index(after)
    return next(i for i, line in enumerate(lines, 1) if i > start and needle in line)


@pytest.mark.parametrize("case", ["bad-url", "missing-client-cert", "unknown-key",
                                  "client-cert-not-pem", "client-cert-is-a-directory"])
def test_destination_configuration_errors_are_refused_with_file_and_line(tmp_path, case):
    gw = Gateway(tmp_path / "gw", upload=dict(UPLOAD))
    good = {"url": "http://127.0.0.1:8042/dicom-web"}
    tls = {"url": "https://127.0.0.1:8042/dicom-web"}
    if case == "bad-url":
        dest, needle = {"url": "ftp//dc.example dicom-web"}, "url ="
    elif case == "missing-client-cert":
        dest, needle = dict(tls, client_cert=str(tmp_path / "nope.pem"),
                            client_key=str(tmp_path / "nope.key")), "client_cert ="
    elif case == "client-cert-not-pem":
        (tmp_path / "site.pem").write_text("this is not a certificate\n")
        dest, needle = dict(tls, client_cert=str(tmp_path / "site.pem"),
                            client_key=str(tmp_path / "site.pem")), "client_cert ="
    elif case == "client-cert-is-a-directory":  # unreadable as a file, even for root
        (tmp_path / "tls").mkdir()
        dest, needle = dict(tls, client_cert=str(tmp_path / "tls"),
                            client_key=str(tmp_path / "tls")), "client_cert ="
    else:
        dest, needle = dict(good, calling_aet=["CT"]), "calling_aet ="
    gw.config.destinations = {"archive": good, "community": dest}
    text = gw.config.toml()
    gw.config_path.write_text(text)
    where = f"{gw.config_path}:{_line_of(text, needle, '[destinations.community]')}:"

    proc = subprocess.Popen([str(harness.passerelled_path()), "--config", str(gw.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
        stderr = "STARTED\n" + stderr
    if stderr.startswith("STARTED\n"):
        pytest.fail(f"passerelled started with this configuration instead of exiting 78:\n{stderr[8:]}")
    out = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    assert out.returncode == 78, out.stderr
    assert where in out.stderr, out.stderr
    assert "destinations.community" in out.stderr or "[destinations.community]" in out.stderr, out.stderr
    if case == "unknown-key":
        assert "unknown key 'calling_aet'" in out.stderr and "calling_aets" in out.stderr, out.stderr
    check = subprocess.run([str(harness.passerellectl_path()), "config", "check", "--config",
                            str(gw.config_path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 78 and where in check.stderr, check.stderr

    gw.config.destinations = {"archive": good}
    gw.config_path.write_text(gw.config.toml())
    check = subprocess.run([str(harness.passerellectl_path()), "config", "check", "--config",
                            str(gw.config_path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


# --------------------------------------------------------------------------
# the status interface


def test_status_lists_every_destination_key_even_when_null(start_hub, start_gateway, tmp_path):
    """`status --json` destinations carry every documented key; absent facts are null (as
    `spool list --json` does for next_at / reason), so that scripts can index them."""
    hub = start_hub()
    gw = gateway_with(start_gateway, {"archive": {"url": hub.dicomweb_url}})
    study, files = make_study(tmp_path / "ct", 3)
    send(gw, files)
    wait_study(gw, study.study_uid)
    dest = destination_status(gw, "archive")
    expected = {"name", "url", "health", "paused", "instances", "studies", "last_success_at",
                "last_error", "next_retry_at", "client_certificate_expires_at"}
    assert expected <= set(dest), f"missing keys: {sorted(expected - set(dest))}"
    assert dest["last_error"] is None and dest["next_retry_at"] is None
    assert dest["client_certificate_expires_at"] is None
    assert set(dest["instances"]) == {"queued", "in_flight", "stored", "retry", "rejected"}
    assert set(dest["studies"]) == {"receiving", "uploading", "verifying", "verified", "rejected", "withheld"}
