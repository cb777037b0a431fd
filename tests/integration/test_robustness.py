"""Hostile peers: the daemon refuses, aborts or times out the bad association,
stores nothing from it, and keeps serving everybody else."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

import datagen
import rawdul
from harness import (Gateway, assert_still_serving, association_rejection, check_spool_integrity,
                     current_by_sop, pn_associate, sop_uid, spool_list, wait_until)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
DROPPED = {"A-ABORT", "closed"}  # acceptable ways to get rid of a bad peer


@pytest.fixture
def instance(tmp_path) -> Path:
    """A CT whose data set is sent by hand (Explicit VR LE)."""
    return datagen.make_ct(tmp_path / "hand.dcm", datagen.Study.new(), rows=128, cols=128)


def open_store_association(gw: Gateway) -> rawdul.RawAssociation:
    raw = rawdul.RawAssociation(gw.port)
    ac = raw.associate(called=gw.ae_title, contexts=[(CT_IMAGE_STORAGE, [rawdul.EXPLICIT_LE])])
    assert ac.accepted.get(1) == rawdul.EXPLICIT_LE, ac
    return raw


def send_store_command(raw: rawdul.RawAssociation, f: Path) -> None:
    raw.send(rawdul.p_data(1, rawdul.c_store_rq(CT_IMAGE_STORAGE, sop_uid(f)),
                           command=True, last=True))


def assert_nothing_kept(gw: Gateway, f: Path) -> None:
    """No record, no stored file, (after a short while) no temp file, and nothing committed
    that a restart would index: in the journal layout a stored instance is a record appended
    to a segment (no store/ file), and a restart replays the journal's tail into the index,
    so the instance must still be unlisted after a kill -9 and a restart."""
    assert sop_uid(f) not in current_by_sop(spool_list(gw.spool))
    assert gw.files_in(gw.store_dir) == []
    assert wait_until(lambda: gw.files_in(gw.tmp_dir) == [], timeout=5), \
        f"temp files left: {gw.files_in(gw.tmp_dir)}"
    gw.kill9()
    gw.restart()
    assert sop_uid(f) not in check_spool_integrity(gw.spool), "indexed once the journal was replayed"
    assert gw.files_in(gw.store_dir) == []


def can_associate(gw: Gateway) -> bool:
    assoc = pn_associate(gw.port, aec=gw.ae_title)
    ok = assoc.is_established
    if ok:
        assoc.release()
    return ok


def hostile_outcome(gw: Gateway, payload: bytes, timeout: float = 10) -> str:
    with rawdul.RawAssociation(gw.port) as raw:
        raw.send(payload)
        return raw.outcome(timeout)


# --------------------------------------------------------------------------
# malformed PDUs


def test_garbage_bytes_dropped(gateway, one_ct):
    assert hostile_outcome(gateway, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4) in DROPPED
    assert_still_serving(gateway, one_ct)


def test_unknown_pdu_type_dropped(gateway, one_ct):
    assert hostile_outcome(gateway, rawdul.pdu(0x09, b"\x00" * 16)) in DROPPED
    assert_still_serving(gateway, one_ct)


def test_associate_rq_with_overflowing_item_length_refused(gateway, one_ct):
    rq = bytearray(rawdul.associate_rq(called=gateway.ae_title))
    # First variable item (application context) starts right after the fixed
    # 68-byte header of the A-ASSOCIATE-RQ body, i.e. at 6 + 68.
    assert rq[74] == 0x10
    struct.pack_into(">H", rq, 76, 0xFFF0)  # claims far more than the PDU holds
    outcome = hostile_outcome(gateway, bytes(rq))
    assert outcome in DROPPED | {"A-ASSOCIATE-RJ"}, outcome
    assert_still_serving(gateway, one_ct)


def test_associate_rq_with_presentation_context_overflowing_pdu(gateway, one_ct):
    rq = bytearray(rawdul.associate_rq(called=gateway.ae_title))
    pc = rq.index(bytes([0x20, 0x00]), 74)  # presentation context item
    struct.pack_into(">H", rq, pc + 2, 0x7FFF)
    outcome = hostile_outcome(gateway, bytes(rq))
    assert outcome in DROPPED | {"A-ASSOCIATE-RJ"}, outcome
    assert_still_serving(gateway, one_ct)


def test_pdu_larger_than_advertised_max_aborted(start_gateway, one_ct, instance):
    gw = start_gateway(max_pdu_length=16384)
    with open_store_association(gw) as raw:
        assert raw.ac.max_pdu == 16384, f"advertised max PDU {raw.ac.max_pdu}"
        send_store_command(raw, instance)
        oversized = datagen.dataset_bytes(instance)[:16384 + 4096]
        raw.send(rawdul.p_data(1, oversized, command=False, last=True))
        assert raw.outcome() in DROPPED
    assert_nothing_kept(gw, instance)
    assert_still_serving(gw, one_ct)


# --------------------------------------------------------------------------
# broken transfers


@pytest.mark.parametrize("how", ["a-abort", "close-socket"])
def test_peer_gone_mid_instance_leaves_nothing(gateway, one_ct, instance, how):
    data = datagen.dataset_bytes(instance)
    with open_store_association(gateway) as raw:
        send_store_command(raw, instance)
        raw.send_dataset(1, data[: len(data) // 2], raw.ac.max_pdu or 16384, last=False)
        time.sleep(0.3)  # let the daemon start writing the temp file
        if how == "a-abort":
            raw.send(rawdul.abort_pdu())
    assert_nothing_kept(gateway, instance)
    assert_still_serving(gateway, one_ct)


def test_truncated_data_set_with_last_flag_fails(gateway, one_ct, instance):
    data = datagen.dataset_bytes(instance)
    # Cut inside the Pixel Data value: the element's length promises more.
    truncated = data[: len(data) - 1000]
    with open_store_association(gateway) as raw:
        send_store_command(raw, instance)
        raw.send_dataset(1, truncated, raw.ac.max_pdu or 16384, last=True)
        try:
            status = rawdul.status_of(raw.recv_command(timeout=10))
        except (rawdul.Closed, AssertionError, ConnectionResetError) as exc:
            status = None  # A-ABORT or connection closed: acceptable
            print(f"dropped: {exc}")
        else:
            assert status & 0xF000 == 0xC000, f"status 0x{status:04X}, expected 0xCxxx"
    assert_nothing_kept(gateway, instance)
    assert_still_serving(gateway, one_ct)


# --------------------------------------------------------------------------
# timeouts and limits


def test_idle_association_aborted_after_idle_timeout(start_gateway, one_ct):
    gw = start_gateway(idle_timeout="2s")
    with rawdul.RawAssociation(gw.port, timeout=15) as raw:
        raw.associate(called=gw.ae_title)
        t0 = time.monotonic()
        outcome = raw.outcome(timeout=12)
        waited = time.monotonic() - t0
    assert outcome in DROPPED, outcome
    assert 1.5 <= waited <= 8, f"dropped after {waited:.1f}s with idle_timeout=2s"
    assert_still_serving(gw, one_ct)


def test_silent_connection_closed_after_idle_timeout(start_gateway, one_ct):
    """TCP connect, never send an A-ASSOCIATE-RQ."""
    gw = start_gateway(idle_timeout="2s")
    with rawdul.RawAssociation(gw.port, timeout=15) as raw:
        t0 = time.monotonic()
        outcome = raw.outcome(timeout=12)
        waited = time.monotonic() - t0
    assert outcome in DROPPED, outcome
    assert waited <= 8, f"closed after {waited:.1f}s"
    assert_still_serving(gw, one_ct)


def test_association_beyond_max_associations_rejected(start_gateway, one_ct):
    gw = start_gateway(max_associations=2)
    held = [pn_associate(gw.port, aec=gw.ae_title) for _ in range(2)]
    try:
        assert all(a.is_established for a in held)
        # rejected-transient, service-provider (presentation), local-limit-exceeded
        assert association_rejection(gw.port, aec=gw.ae_title) == (2, 3, 2)
    finally:
        for a in held:
            a.release()
    # Slots are given back once the associations are released.
    assert wait_until(lambda: can_associate(gw), timeout=5)
    assert_still_serving(gw, one_ct)
