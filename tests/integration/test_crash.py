"""kill -9 during ingest: every acknowledged instance survives, nothing partial."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import datagen
from harness import (Gateway, check_spool_integrity, instance_dataset_bytes,
                     parse_storescu_output, pn_store, sop_uid, storescu, storescu_popen, wait_until)

N = 300


@pytest.fixture(scope="module")
def ct300(tmp_path_factory) -> list[Path]:
    study = datagen.Study.new(datagen.Patient("CRASH1", "Crash^Test"))
    return datagen.make_ct_series(tmp_path_factory.mktemp("ct300"), N, study)


def assert_spool_consistent(gw: Gateway, acknowledged: list[Path]) -> dict[str, dict]:
    """Every acknowledged instance is listed, byte for byte the data set sent, and nothing
    half-written is visible: every listed instance's bytes ([offset, offset + size) of its
    store/ file or journal segment) hash to its sha256 and parse completely, no two share
    bytes, no store/ file is unlisted, tmp/ is empty."""
    by_sop = check_spool_integrity(gw.spool)
    missing = [f.name for f in acknowledged if sop_uid(f) not in by_sop]
    assert not missing, f"{len(missing)} acknowledged instances lost, e.g. {missing[:5]}"
    for f in acknowledged:
        assert instance_dataset_bytes(by_sop[sop_uid(f)]) == datagen.dataset_bytes(f), \
            f"{f.name}: the spooled data set differs from the one sent"
    return by_sop


def kill_when(gw: Gateway, condition, timeout: float = 120) -> None:
    assert wait_until(condition, timeout, interval=0.02), "sender never got going"
    gw.kill9()


def resend_all_and_check(gw: Gateway, files: list[Path]) -> None:
    res = storescu(files, gw.port, aec=gw.ae_title)
    assert len(res.acked) == len(files), res.output[-2000:]
    by_sop = assert_spool_consistent(gw, files)
    assert {sop_uid(f) for f in files} == set(by_sop)


def test_kill9_during_storescu(start_gateway, ct300, tmp_path):
    gw = start_gateway()
    log = tmp_path / "storescu.log"
    proc = storescu_popen(ct300, gw.port, log, aec=gw.ae_title)

    def acked_so_far() -> int:
        return sum(r == "Success" for r in parse_storescu_output(log.read_text()).values())

    kill_when(gw, lambda: acked_so_far() >= N // 3)
    proc.wait(60)
    responses = parse_storescu_output(log.read_text())
    acked = [Path(f) for f, r in responses.items() if r == "Success"]
    assert N // 3 <= len(acked) < N, f"{len(acked)} acked: kill came too late to test anything"

    gw.restart()
    assert_spool_consistent(gw, acked)
    resend_all_and_check(gw, ct300)


def test_kill9_during_pynetdicom_store(start_gateway, ct300):
    gw = start_gateway()
    acked: list[Path] = []

    def record(f: Path, status: int | None) -> None:
        if status == 0x0000:
            acked.append(f)

    sender = threading.Thread(target=lambda: pn_store(gw.port, ct300, aec=gw.ae_title,
                                                      on_result=record, timeout=10),
                              daemon=True)
    sender.start()
    kill_when(gw, lambda: len(acked) >= N // 3)
    sender.join(60)
    assert not sender.is_alive(), "pynetdicom sender hung after the daemon died"
    assert N // 3 <= len(acked) < N

    gw.restart()
    assert_spool_consistent(gw, list(acked))
    resend_all_and_check(gw, ct300)
