"""A spool on a small real file system filled to the brim (issue 15, "real full disk").

The spool lives on a 96 MiB tmpfs, or on a loop-mounted 128 MiB ext4 image (where the
journal or SQLite may meet ENOSPC on metadata before data), both made by the test (it runs
as root, as the suite does on CI). A ballast file takes part of the room; storescu sends more
than the rest holds. Then:

- the SCP refuses with A700 before the disk is full (`min_free`), and the daemon never exits;
  with a `min_free` too small to protect it, the disk really fills: SQLite cannot write the
  index of instances already acknowledged (durable in the journal); receptions are then
  refused until room returns, when those are indexed without a restart;
- every acknowledged instance is listed, whole and byte-identical; nothing partial is left;
  SQLite passes its integrity check;
- once the ballast is deleted, the refused files are accepted again without a restart;
- after a restart, everything acknowledged is still there.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

import datagen
import harness
from harness import wait_until

MIN_FREE = "16MiB"


@pytest.fixture
def small_fs(tmp_path):
    """Factory: small_fs(kind) -> a mounted directory (tmpfs 96 MiB, or ext4 128 MiB on a loop
    device), unmounted at teardown."""
    mounts: list[Path] = []

    def make(kind: str) -> Path:
        point = tmp_path / f"fs-{kind}"
        point.mkdir()
        if kind == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(point)], check=True)
        else:
            image = tmp_path / "fs.ext4"
            subprocess.run(["truncate", "-s", "128M", str(image)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
        mounts.append(point)
        return point

    yield make
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


def free_bytes(path: Path) -> int:
    import os
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.mark.parametrize("kind", ["tmpfs", "ext4"])
@pytest.mark.parametrize("min_free", [MIN_FREE, "64KiB"], ids=["min_free", "enospc"])
def test_a_full_spool_refuses_with_a700_loses_nothing_and_resumes_when_room_returns(
        kind, min_free, small_fs, tmp_path, start_gateway):
    root = small_fs(kind)
    # 256x256 16-bit CT: ~130 KB each; 700 of them (~90 MB) are more than the file system
    # holds above min_free once the ballast is there.
    files = datagen.make_ct_series(tmp_path / "ct", 700, rows=256, cols=256)
    sop_of = {str(f): str(datagen.read(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    gw = start_gateway(spool=root / "spool", spool_extra={"segment_size": "4MiB"}, min_free=min_free)
    ballast = root / "ballast"
    with open(ballast, "wb") as f:
        f.write(b"\0" * (24 << 20))
        f.flush()
    first = harness.storescu(files, gw.port, aec=gw.ae_title)
    gw.check_alive()
    refused = first.failed
    assert first.acked, first.output[-3000:]
    assert refused, f"the file system never filled ({free_bytes(root) >> 20} MiB free)"
    for response in refused.values():
        assert "A700" in response or "Out of Resources" in response or "OutOfResources" in response, response
    if min_free == MIN_FREE:
        assert free_bytes(root) > 4 << 20, "refused before the disk was full"
    assert "no response" not in refused.values(), "every file was answered"

    def check(acked: list[str]) -> None:
        records = harness.check_spool_integrity(gw.spool)
        missing = [a for a in acked if sop_of[a] not in records]
        assert not missing, f"{len(missing)} acknowledged instances missing, e.g. {missing[:3]}"
        for name in acked:
            assert harness.instance_dataset_bytes(records[sop_of[name]]) == datagen.dataset_bytes(name), \
                f"{name}: the data set differs from what was sent"
        con = sqlite3.connect(f"file:{gw.spool / 'spool.sqlite'}?mode=ro", uri=True)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()

    if min_free == MIN_FREE:
        check(first.acked)  # refused before the index ran out of room: everything listed at once

    # Room returns: what was acknowledged while SQLite had no room is indexed (within a
    # second, no restart), and the refused files go in now.
    ballast.unlink()
    assert wait_until(lambda: {sop_of[a] for a in first.acked} <= set(harness.current_by_sop(
        harness.spool_list(gw.spool))), 15), "acknowledged instances still not indexed after room returned"
    check(first.acked)
    retry = [Path(f) for f in refused]
    second = harness.storescu(retry, gw.port, aec=gw.ae_title)
    gw.check_alive()
    assert second.acked, second.output[-3000:]
    acked = first.acked + second.acked
    check(acked)

    # A restart keeps every acknowledged instance.
    assert gw.stop() == 0
    gw.start()
    check(acked)
