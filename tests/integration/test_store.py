"""C-STORE: what is acknowledged is in the spool, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

import datagen
import rawdul
from harness import (check_instance, check_no_overlap, current_by_sop, instance_tail, pn_store,
                     sop_uid, spool_list, spool_table, storage_files, storescu, storescu_exact_ts,
                     storescu_popen, parse_storescu_output)

STATUS_OUT_OF_RESOURCES = 0xA700
DEFLATED = "1.2.840.10008.1.2.1.99"
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3  # presentation context result (PS3.8 9.3.3.2)


def assert_stored_as_sent(record: dict, original: Path, calling_ae: str, spool: Path) -> None:
    """The spool record and the stored bytes match the instance that was sent (the bytes are
    [offset, offset + size) of `path`: a whole store/ file or a journal segment's record).

    The data set is compared as raw bytes (everything after the File Meta
    group). This is valid because every sender used here transmits the data
    set of the file unchanged: storescu re-encodes, but when the proposed
    transfer syntax equals the file's it reproduces the same bytes for these
    files (checked against DCMTK storescp, which writes what it receives), and
    pynetdicom sends the file's data set bytes as they are."""
    src = datagen.read(original, stop_before_pixels=True)
    assert record["sop_instance_uid"] == src.SOPInstanceUID
    assert record["sop_class_uid"] == src.SOPClassUID
    assert record["study_instance_uid"] == src.StudyInstanceUID
    assert record["series_instance_uid"] == src.SeriesInstanceUID
    assert record["patient_id"] == src.PatientID
    assert record["transfer_syntax_uid"] == src.file_meta.TransferSyntaxUID
    assert record["calling_ae_title"] == calling_ae
    assert record["state"] == "current"
    assert record["destinations"] == {}, "no destination is configured"
    assert record["received_at"], "received_at is empty"

    # absolute path inside the spool, holding [offset, offset + size) (a whole store/ file),
    # bytes hashing to sha256, a Part-10 instance parsing completely
    stored = check_instance(record, spool)
    meta = datagen.file_meta_of(stored)
    assert meta.TransferSyntaxUID == src.file_meta.TransferSyntaxUID
    assert meta.MediaStorageSOPInstanceUID == src.SOPInstanceUID
    assert meta.get("SourceApplicationEntityTitle", "").strip() == calling_ae
    sent = datagen.dataset_bytes(original)
    if src.file_meta.TransferSyntaxUID == DEFLATED and len(sent) % 2:
        # PS3.5 A.5: an odd-length deflated bit stream travels with one trailing NUL byte
        # (storescu adds it); the gateway stores what it received.
        sent += b"\x00"
    assert datagen.dataset_bytes_of(stored) == sent, f"stored data set of {original.name} differs from the one sent"


def files_holding(spool: Path, sop_instance_uid: str) -> list[Path]:
    """The spool's storage files (store/, journal/) whose bytes contain this UID."""
    needle = sop_instance_uid.encode()
    return [p for p in storage_files(spool) if needle in p.read_bytes()]


def assert_spool_holds_exactly(spool: Path, originals: list[Path], calling_ae: str) -> None:
    by_sop = current_by_sop(spool_list(spool))
    expected = {sop_uid(f): f for f in originals}
    assert set(by_sop) == set(expected), (
        f"missing {len(set(expected) - set(by_sop))}, "
        f"unexpected {len(set(by_sop) - set(expected))}")
    for uid, original in expected.items():
        assert_stored_as_sent(by_sop[uid], original, calling_ae, spool)
    check_no_overlap(list(by_sop.values()))


# --------------------------------------------------------------------------


def test_500_ct_on_one_association(gateway, ct500):
    res = storescu(ct500, gateway.port, aet="CT_SCANNER", aec=gateway.ae_title)
    assert res.returncode == 0 and len(res.acked) == 500, \
        f"{len(res.acked)} acked, failures: {list(res.failed.items())[:3]}\n{res.output[-2000:]}"
    assert_spool_holds_exactly(gateway.spool, ct500, "CT_SCANNER")
    rec = next(iter(spool_list(gateway.spool)))
    assert rec["patient_name"] == "Martin^Paul"
    assert rec["issuer_of_patient_id"] == "CHR-ORLEANS"


def test_four_concurrent_associations(gateway, ct500, tmp_path):
    batches = [ct500[i * 50:(i + 1) * 50] for i in range(4)]
    logs = [tmp_path / f"storescu{i}.log" for i in range(4)]
    procs = [storescu_popen(batch, gateway.port, log, aet=f"SCU{i}", aec=gateway.ae_title)
             for i, (batch, log) in enumerate(zip(batches, logs))]
    for proc, log in zip(procs, logs):
        assert proc.wait(600) == 0, log.read_text()
        responses = parse_storescu_output(log.read_text())
        assert list(responses.values()) == ["Success"] * 50, log.read_text()[-2000:]
    by_sop = current_by_sop(spool_list(gateway.spool))
    assert len(by_sop) == 200
    for i, batch in enumerate(batches):
        for f in batch:
            assert_stored_as_sent(by_sop[sop_uid(f)], f, f"SCU{i}", gateway.spool)
    check_no_overlap(list(by_sop.values()))  # interleaved receptions never share bytes


@pytest.fixture(scope="module")
def ts_files(tmp_path_factory) -> dict[str, Path]:
    return datagen.make_ct_all_transfer_syntaxes(tmp_path_factory.mktemp("ts"))


# DCMTK 3.6.7 does not know HTJ2K: it cannot read those files, pynetdicom sends them.
DCMTK_UNKNOWN_TS = {datagen.TS_HTJ2K_LOSSLESS, datagen.TS_HTJ2K}


@pytest.mark.parametrize("ts", datagen.ALL_TRANSFER_SYNTAXES)
def test_transfer_syntax_stored_as_received(gateway, ts_files, ts, tmp_path):
    f = ts_files[ts]
    if ts in DCMTK_UNKNOWN_TS:
        assert pn_store(gateway.port, [f], aet="PYSCU", aec=gateway.ae_title) == [0x0000]
        calling = "PYSCU"
    else:
        res = storescu_exact_ts(f, gateway.port, tmp_path, aec=gateway.ae_title)
        assert res.acked == [str(f)], res.output
        calling = "STORESCU"
    record = current_by_sop(spool_list(gateway.spool))[sop_uid(f)]
    assert record["transfer_syntax_uid"] == ts
    assert_stored_as_sent(record, f, calling, gateway.spool)


@pytest.mark.parametrize("charset,name", [
    ("ISO_IR 100", "Hélène^Dupré"),
    ("ISO_IR 192", "Françoise^Lefèvre-Böhm"),
])
def test_accented_patient_name_decoded(gateway, tmp_path, charset, name):
    study = datagen.Study.new(datagen.Patient("ACC1", name, charset))
    f = datagen.make_ct(tmp_path / "acc.dcm", study, rows=64, cols=64)
    raw = datagen.dataset_bytes(f)
    assert name.encode("latin-1" if charset == "ISO_IR 100" else "utf-8") in raw  # sanity
    assert storescu([f], gateway.port, aec=gateway.ae_title).acked == [str(f)]
    record = current_by_sop(spool_list(gateway.spool))[sop_uid(f)]
    assert record["patient_name"] == name
    assert_stored_as_sent(record, f, "STORESCU", gateway.spool)


def test_spool_list_table_mentions_instance(gateway, one_ct):
    assert storescu([one_ct], gateway.port, aec=gateway.ae_title).acked == [str(one_ct)]
    assert sop_uid(one_ct) in spool_table(gateway.spool)


def test_resend_identical_bytes_keeps_one_record(gateway, one_ct):
    for _ in range(2):
        res = storescu([one_ct], gateway.port, aec=gateway.ae_title)
        assert res.acked == [str(one_ct)], res.output
    uid = sop_uid(one_ct)
    for revisions in (False, True):
        records = [r for r in spool_list(gateway.spool, revisions) if r["sop_instance_uid"] == uid]
        assert len(records) == 1, f"revisions={revisions}: {records}"
    assert_stored_as_sent(records[0], one_ct, "STORESCU", gateway.spool)


def test_resend_different_bytes_supersedes(gateway, one_ct, tmp_path):
    uid = sop_uid(one_ct)
    assert storescu([one_ct], gateway.port, aec=gateway.ae_title).acked == [str(one_ct)]
    first = current_by_sop(spool_list(gateway.spool))[uid]

    changed = datagen.with_modified_attribute(one_ct, tmp_path / "changed.dcm",
                                              InstitutionName="CHR Orleans - corrected")
    assert storescu([changed], gateway.port, aec=gateway.ae_title).acked == [str(changed)]

    current = current_by_sop(spool_list(gateway.spool))[uid]
    assert_stored_as_sent(current, changed, "STORESCU", gateway.spool)
    assert current["sha256"] != first["sha256"]

    history = [r for r in spool_list(gateway.spool, revisions=True) if r["sop_instance_uid"] == uid]
    assert sorted(r["state"] for r in history) == ["current", "superseded"], history
    old = next(r for r in history if r["state"] == "superseded")
    assert old["sha256"] == first["sha256"]


def test_unknown_sop_class_context_rejected(gateway):
    private = "1.2.3.4.5.6.7"
    with rawdul.RawAssociation(gateway.port) as raw:
        ac = raw.associate(called=gateway.ae_title, contexts=[
            (private, [rawdul.EXPLICIT_LE]), (rawdul.VERIFICATION, [rawdul.IMPLICIT_LE])])
        assert ac.rejected.get(1) == ABSTRACT_SYNTAX_NOT_SUPPORTED, ac
        assert 3 in ac.accepted, ac
        raw.send(rawdul.release_rq())


def test_unknown_sop_class_not_stored(gateway, tmp_path):
    f = datagen.make_with_private_sop_class(tmp_path / "private.dcm", datagen.Study.new())
    res = storescu_exact_ts(f, gateway.port, tmp_path, aec=gateway.ae_title)
    assert res.returncode != 0 and not res.acked, res.output
    assert sop_uid(f) not in current_by_sop(spool_list(gateway.spool))
    assert gateway.files_in(gateway.store_dir) == []
    assert not files_holding(gateway.spool, sop_uid(f)), "its bytes are in the spool's storage"


def test_disk_below_min_free_answers_a700_and_keeps_nothing(start_gateway, one_ct):
    gw = start_gateway(min_free="100%")
    assert pn_store(gw.port, [one_ct], aec=gw.ae_title) == [STATUS_OUT_OF_RESOURCES]
    assert spool_list(gw.spool) == []
    assert gw.files_in(gw.store_dir) == []
    assert not files_holding(gw.spool, sop_uid(one_ct)), "written to the journal below min_free"
    assert gw.files_in(gw.tmp_dir) == []


def test_one_gibibyte_instance_streams_to_disk(start_gateway, tmp_path):
    """A 1 GiB multi-frame instance is stored byte for byte without 1 GiB of RAM."""
    gw = start_gateway()
    big = datagen.make_large_multiframe(tmp_path / "big.dcm", datagen.Study.new(), frames=512)
    assert big.stat().st_size > 1 << 30
    res = storescu([big], gw.port, aec=gw.ae_title)
    assert len(res.acked) == 1, res.output[-2000:]
    peak_mb = gw.peak_rss_kb() / 1024
    assert peak_mb < 200, f"passerelled peaked at {peak_mb:.0f} MB for a 1 GiB instance"
    record = spool_list(gw.spool)[0]
    check_instance(record, gw.spool, parse=False)  # its range of its file, hashing to sha256
    assert record["size"] - big.stat().st_size < 1024  # the same data set, another header
    with open(big, "rb") as a:
        a.seek(-(1 << 20), 2)
        assert a.read() == instance_tail(record, 1 << 20), "the last MiB of pixel data differs"
    big.unlink()
