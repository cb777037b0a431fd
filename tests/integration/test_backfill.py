"""Migration of the site's existing archive: `passerellectl backfill …` and `reconcile`.

Every test starts its own site PACS (pacs.py: a real Orthanc 1.10 as AE "PACS", C-FIND
answers cut at LimitFindResults = pacs.LIMIT, loaded with the studies of pacs.DAYS), its own
archive (a plain Orthanc with DICOMweb, as in test_upload.py) and a passerelled whose `[[ae]]`
names the PACS and whose `[destinations.archive]` is the archive. The PACS sends its C-MOVE
sub-operations to passerelled through a DimseCountingProxy (dimseproxy.py), which counts the
successful C-STORE-RSPs per SOP Instance UID: what crossed, and how many times.

What the PACS answers (details in pacs.py): a STUDY-level C-FIND with more matches than its
limit gets `limit` answers then 0xFE00; exactly `limit` matches get Success; with
ModalitiesInStudy the limit counts matching series and the cut can come back as Success with
fewer answers than the limit (days 20240108 / 20240109 of the data are built so).

Expected values are always computed from the PacsStudy list of the data set.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
import signal
import subprocess
from dataclasses import dataclass

import pytest

import datagen
import harness
import pacs as pacsmod
from dimseproxy import DimseCountingProxy
from harness import Gateway, current_by_sop, instance_bytes, spool_list, wait_until
from orthanc import Orthanc
from pacs import LIMIT, Pacs, PacsStudy

PACS_TITLE = pacsmod.PACS_AET
SINCE, UNTIL = pacsmod.FIRST_DAY, pacsmod.LAST_DAY
UPLOAD = {"stable_after": "1s", "retry_min": "200ms", "retry_max": "2s"}
# Defaults of the tests' [backfill]: free space and queue gates out of the way.
BACKFILL = {"parallel": 2, "schedule": [], "max_studies_per_hour": 0,
            "pause_below_free": "10MiB", "pause_above_queue": 10000}
CSV_COLUMNS = ["status", "study_instance_uid", "study_date", "patient_id", "pacs_instances",
               "archive_instances", "spool_instances"]


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def pacs_studies(data_dir) -> list[PacsStudy]:
    """The PACS's data set (pacs.DAYS), generated once."""
    return pacsmod.generate(data_dir / "pacs")


@dataclass
class Site:
    pacs: Pacs
    archive: Orthanc
    gw: Gateway
    proxy: DimseCountingProxy

    @property
    def studies(self) -> list[PacsStudy]:
        return self.pacs.studies


@pytest.fixture
def site(tmp_path, request, start_gateway, pacs_studies):
    """Factory: site(limit=LIMIT, backfill={...}, spool_extra=None, upload=None) -> Site: the
    PACS started and loaded, an empty archive, passerelled ([backfill] find_limit = limit
    unless given), the counting proxy in front of passerelled's DICOM port as the PACS's move
    destination for passerelled's AE title."""
    hubs: list[Orthanc] = []
    proxies: list[DimseCountingProxy] = []
    request.node._hubs = hubs  # their logs go into the report of a failing test (conftest)

    def start(*, limit: int = LIMIT, backfill: dict | None = None,
              spool_extra: dict | None = None, upload: dict | None = None,
              retrieve: str | None = None) -> Site:
        pacs = Pacs(tmp_path / "pacs", pacs_studies, limit=limit)
        hubs.append(pacs.orthanc)
        pacs.start().load()
        archive = Orthanc(tmp_path / "archive", env={"TCP_NODELAY": "1"})
        hubs.append(archive)
        archive.start()
        gw = start_gateway(site={"issuer_of_patient_id": pacsmod.ISSUER},
                           upload={**UPLOAD, **(upload or {})},
                           destinations={"archive": {"url": archive.dicomweb_url}},
                           aes=[{**pacs.ae_table(), **({"retrieve": retrieve} if retrieve else {})}],
                           tables={"backfill": {**BACKFILL, "find_limit": limit,
                                                **(backfill or {})}},
                           spool_extra=spool_extra)
        proxy = DimseCountingProxy(gw.port).start()
        proxies.append(proxy)
        pacs.set_move_destination(gw.ae_title, proxy.port)
        return Site(pacs, archive, gw, proxy)

    yield start
    for hub in hubs:  # stop them together: Orthanc takes ~3 s to stop
        if hub.alive():
            hub.proc.send_signal(signal.SIGTERM)
    for hub in hubs:
        hub.stop()
    for proxy in proxies:
        proxy.stop()


# --------------------------------------------------------------------------
# the CLI


def ctl(gw: Gateway, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = [str(harness.passerellectl_path()), *args, "--config", str(gw.config_path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def ctl_json(gw: Gateway, *args: str):
    out = ctl(gw, *args)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"passerellectl {' '.join(args)}: not JSON ({e}):\n{out.stdout[:2000]}")


def range_args(since: str = SINCE, until: str = UNTIL) -> list[str]:
    return ["--since", since, "--until", until]


def plan(gw: Gateway, *args: str) -> dict:
    return ctl_json(gw, "backfill", "plan", "--from", PACS_TITLE, *args, "--json")


def start_job(gw: Gateway, *args: str) -> int:
    job_id = ctl_json(gw, "backfill", "start", "--from", PACS_TITLE, *args, "--json")["job"]
    assert isinstance(job_id, int), job_id
    return job_id


def jobs(gw: Gateway) -> list[dict]:
    return ctl_json(gw, "backfill", "status", "--json")["jobs"]


def job(gw: Gateway, job_id: int) -> dict:
    found = [j for j in jobs(gw) if j["id"] == job_id]
    assert len(found) == 1, f"job {job_id} not (once) in backfill status: {jobs(gw)}"
    return found[0]


def wait_job(gw: Gateway, job_id: int, condition=lambda j: j["state"] == "done",
             timeout: float = 60, what: str = "done") -> dict:
    last: dict = {}

    def reached() -> bool:
        gw.check_alive()
        last["job"] = job(gw, job_id)
        return condition(last["job"])

    if not wait_until(reached, timeout, interval=0.25):
        raise AssertionError(f"backfill job {job_id} not {what} after {timeout}s:\n"
                             + json.dumps(last.get("job"), indent=1))
    return last["job"]


def metric_sum(text: str, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total, seen = 0.0, False
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
            seen = True
    assert seen, f"no {name}{labels or ''} sample in the metrics:\n{text[-3000:]}"
    return total


def metrics(gw: Gateway) -> str:
    return ctl(gw, "metrics").stdout


# --------------------------------------------------------------------------
# expectations


def days_between(since: str, until: str) -> int:
    a, b = (datetime.date.fromisoformat(d) for d in (since, until))
    return (b - a).days + 1


def sop_uids(studies: list[PacsStudy]) -> set[str]:
    return {u for s in studies for u in s.sop_uids}


def instance_count(studies: list[PacsStudy]) -> int:
    return sum(s.instances for s in studies)


def studies_found(j: dict) -> int:
    """Every study the job found: `studies` counts them by state (found = not retrieved yet,
    retrieving, retrieved, already_archived, failed), each study in one state."""
    return sum(j["studies"].values())


def entries(report: dict, key: str, *fields: str) -> list[dict]:
    """The `key` list of a reconcile report, each entry cut down to `fields` (the ones the
    tests check; others may be there too), in study order."""
    return sorted(({f: e.get(f) for f in fields} for e in report[key]), key=lambda e: e["study"])


def by_year_modality(rows: list[dict]) -> list[dict]:
    return sorted(({k: r[k] for k in ("year", "modality", "studies", "instances")} for r in rows),
                  key=lambda r: (r["year"], r["modality"]))


def assert_plan(result: dict, studies: list[PacsStudy], already_archived: int = 0) -> None:
    assert result["studies"] == len(studies), result
    assert result["instances"] == instance_count(studies), result
    assert result["already_archived"] == already_archived, result
    assert by_year_modality(result["by_year_modality"]) == \
        pacsmod.expected_by_year_modality(studies), result["by_year_modality"]
    est = result.get("estimated_seconds")
    assert est is None or (isinstance(est, (int, float)) and est >= 0), result


def wait_archive_holds(archive: Orthanc, uids: set[str], timeout: float = 60) -> None:
    """Until the archive holds exactly `uids` (checked by count, then UID by UID)."""
    wait_until(lambda: archive.count_instances() >= len(uids), timeout, interval=0.25)
    held = archive.instance_uids()
    assert held == uids, (f"archive: {len(held)} instances, {len(uids)} expected; missing "
                          f"{len(uids - held)} e.g. {sorted(uids - held)[:3]}, unexpected "
                          f"{sorted(held - uids)[:3]}")


def assert_archive_identical(site: Site, studies: list[PacsStudy]) -> None:
    """Every instance of `studies` at the archive (WADO-RS): its data set byte for byte the one
    the PACS was loaded with, and the whole file the one the spool received (while listed)."""
    records = current_by_sop(spool_list(site.gw.spool))
    for s in studies:
        for uid, series, f in zip(s.sop_uids, s.instance_series, s.files):
            at = site.archive.instance_file(uid, s.study_uid, series)
            assert datagen.dataset_bytes_of(at) == datagen.dataset_bytes(f), \
                f"{uid} ({s.study_date} {s.modality}): data set differs from the PACS's"
            if uid in records:
                assert instance_bytes(records[uid]) == at, f"{uid}: the archive's file differs " \
                                                           "from the spooled one"


def local_window(hours_from_now: int, length_hours: int = 1) -> tuple[str, str]:
    """("HH:MM", "HH:MM") of a window starting `hours_from_now` hours from now (local time)."""
    now = datetime.datetime.now()
    start = now + datetime.timedelta(hours=hours_from_now)
    end = start + datetime.timedelta(hours=length_hours)
    return start.strftime("%H:%M"), end.strftime("%H:%M")


# --------------------------------------------------------------------------
# the tools themselves


def test_counting_proxy_counts_successful_c_store_responses(tmp_path, pacs_studies):
    """dimseproxy between a DCMTK storescu and a DCMTK storescp, then a pynetdicom SCP that
    refuses every other instance: only Status 0x0000 responses count, per SOP Instance UID."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    files = [f for s in pacs_studies[:3] for f in s.files]
    uids = {harness.sop_uid(f) for f in files}
    with harness.StoreSCP(tmp_path / "recv", "COUNTSCP") as scp, \
            DimseCountingProxy(scp.port) as proxy:
        res = harness.storescu(files, proxy.port, aec="COUNTSCP")
        assert len(res.acked) == len(files), res.output[-2000:]
        assert proxy.stored_uids() == uids and proxy.stored_count() == len(files)
        assert proxy.duplicates() == {} and proxy.failures() == []
        res = harness.storescu(files[:2], proxy.port, aec="COUNTSCP")
        assert proxy.duplicates() == {harness.sop_uid(f): 2 for f in files[:2]}
        assert len(scp.files()) == len(uids)

    calls = []

    def on_store(event):
        calls.append(event.request.AffectedSOPInstanceUID)
        return 0x0000 if len(calls) % 2 else 0xA700

    ae = AE(ae_title="HALFSCP")
    ae.supported_contexts = AllStoragePresentationContexts
    port = harness.free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        with DimseCountingProxy(port) as proxy:
            harness.storescu(files[:6], proxy.port, aec="HALFSCP")
            assert [st for _, st in proxy.responses] == [0x0000, 0xA700] * 3
            assert proxy.stored_uids() == set(calls[0::2])
            assert proxy.requested_count() == 6
    finally:
        server.shutdown()


# --------------------------------------------------------------------------
# plan


def test_plan_counts_what_the_pacs_holds_by_year_and_modality_and_moves_nothing(site):
    s = site()
    everything = s.pacs.select(SINCE, UNTIL)
    assert everything == s.studies
    capped = pacsmod.capped_days(everything)
    assert capped, "the data set has days with more studies than the PACS answers"

    result = plan(s.gw, *range_args())
    assert_plan(result, everything)
    # day by day, and each capped day split into at least two more queries
    assert result["queries"] >= days_between(SINCE, UNTIL) + 2 * len(capped), result

    part = s.pacs.select("2024-01-03", "2024-01-04")
    assert_plan(plan(s.gw, *range_args("2024-01-03", "2024-01-04")), part)

    # C-FIND only: no C-MOVE sub-operation reached passerelled, nothing in the spool or archive
    assert s.proxy.snapshot() == {"associations": 0, "requested": 0, "stored": 0, "responses": 0}
    assert spool_list(s.gw.spool) == []
    assert s.archive.count_instances() == 0


def test_plan_estimates_the_duration_from_the_cap_the_schedule_and_the_last_job(site):
    """Without cap nor earlier job, no estimate. max_studies_per_hour = 60 and a 12-hour window:
    a minute per study, doubled. After a job has run, its rate is the basis too."""
    start, end = local_window(2, length_hours=12)
    s = site(backfill={"max_studies_per_hour": 60, "schedule": [f"{start}-{end}"]})
    part = s.pacs.select("2024-01-02", "2024-01-02")
    result = plan(s.gw, *range_args("2024-01-02", "2024-01-02"))
    assert_plan(result, part)
    assert result["estimated_seconds"] == pytest.approx(len(part) * 60 * 2, rel=0.02), result
    assert result.get("last_job_instances_per_second") is None, result

    reload_backfill(s.gw)  # no cap, no window
    assert plan(s.gw, *range_args("2024-01-02", "2024-01-02"))["estimated_seconds"] is None
    wait_job(s.gw, start_job(s.gw, *range_args("2024-01-02", "2024-01-02")), timeout=60)
    later = s.pacs.select("2024-01-03", "2024-01-03")
    result = plan(s.gw, *range_args("2024-01-03", "2024-01-03"))
    rate = result["last_job_instances_per_second"]
    assert rate > 0, result
    assert result["estimated_seconds"] == pytest.approx(instance_count(later) / rate, rel=0.02), result


def test_plan_with_find_limit_0_relies_on_the_final_status(site):
    """find_limit = 0: only a final status other than Success says an answer was cut (Orthanc
    answers 0xFE00 after its `limit` answers); a day of exactly `limit` studies comes back
    complete with Success."""
    s = site(backfill={"find_limit": 0})
    assert_plan(plan(s.gw, *range_args()), s.studies)
    assert s.proxy.snapshot()["associations"] == 0


def test_plan_with_modalities_counts_every_study_of_those_modalities(site):
    """--modalities CT,MR. Days 20240108 (not capped: 4 studies) and 20240109 (capped: 6) hold
    MR studies of several series: Orthanc, asked with ModalitiesInStudy, cuts at `limit`
    matching *series* and answers the studies among them with Success (2 of the 3 MR studies of
    20240108, 3 of the 4 of 20240109). Every study must be counted all the same."""
    s = site()
    wanted = ["CT", "MR"]
    result = plan(s.gw, *range_args(), "--modalities", ",".join(wanted))
    assert_plan(result, s.pacs.select(SINCE, UNTIL, wanted))
    assert {r["modality"] for r in result["by_year_modality"]} == set(wanted)
    assert_plan(plan(s.gw, *range_args(), "--modalities", "CR"), s.pacs.select(SINCE, UNTIL, ["CR"]))
    assert s.proxy.snapshot()["associations"] == 0


# --------------------------------------------------------------------------
# migration


def test_full_migration_brings_every_instance_byte_identical_to_the_archive(site):
    s = site()
    everything = s.pacs.select(SINCE, UNTIL)
    out = ctl(s.gw, "backfill", "start", "--from", PACS_TITLE, *range_args()).stdout
    m = re.search(r"backfill job (\d+) started", out)
    assert m, out
    job_id = int(m.group(1))

    done = wait_job(s.gw, job_id, timeout=90)
    wait_archive_holds(s.archive, sop_uids(everything))
    assert_archive_identical(s, everything)

    assert done["source"] == PACS_TITLE and done.get("gate") is None, done
    assert done["days_total"] == done["days_done"] == days_between(SINCE, UNTIL), done
    # the capped days were split: every study was found, though LimitFindResults < a day's
    assert studies_found(done) == len(everything), done
    assert done["studies"]["retrieved"] == len(everything), done
    assert done["studies"]["retrieving"] == done["studies"]["already_archived"] == 0, done
    assert done["studies"]["failed"] == 0, done
    assert done["instances_expected"] == done["instances_retrieved"] == instance_count(everything)
    assert done["failures"] == []

    # each instance crossed once, successfully
    assert s.proxy.stored_uids() == sop_uids(everything)
    assert s.proxy.duplicates() == {} and s.proxy.failures() == []

    # a counter: what every job retrieved, finished ones included
    assert metric_sum(metrics(s.gw), "passerelle_backfill_instances_retrieved_total") == \
        instance_count(everything)

    # planned again: everything is at the archive now
    assert_plan(plan(s.gw, *range_args()), everything, already_archived=len(everything))


def test_a_migration_by_c_get_needs_no_route_back_from_the_pacs(site):
    """[[ae]] retrieve = "get": the PACS sends the instances on passerelled's own association
    (C-GET, storage contexts with the SCP role), so it needs no C-MOVE destination for
    passerelled: none is configured, nothing crosses the proxy, and everything reaches the
    archive byte-identical, audited as received from the PACS."""
    since, until = "2024-01-02", "2024-01-04"
    s = site(retrieve="get")
    status, _, body = s.pacs.orthanc.request("DELETE", f"/modalities/{s.gw.ae_title}")
    assert status == 200, body
    scope = s.pacs.select(since, until)
    job_id = start_job(s.gw, *range_args(since, until))
    done = wait_job(s.gw, job_id, timeout=90)
    assert done["studies"]["retrieved"] == len(scope) and done["studies"]["failed"] == 0, done
    assert done["instances_retrieved"] == instance_count(scope), done
    wait_archive_holds(s.archive, sop_uids(scope))
    assert_archive_identical(s, scope)
    assert s.proxy.snapshot()["associations"] == 0
    first = scope[0]
    rows = ctl_json(s.gw, "audit", "export", "--patient", first.patient_id, "--issuer", pacsmod.ISSUER,
                    "--format", "json")
    received = [r for r in rows if r["action"] == "instancesReceived"]
    assert [(r["ae_title"], r["studies"], r["details"]["count"]) for r in received] == \
        [(PACS_TITLE, [first.study_uid], str(first.instances))], rows


def test_studies_already_at_the_archive_are_not_moved(site):
    """Three whole studies (CT, MR, CR) and half of a fourth are put into the archive first:
    the three are `already_archived` (plan and job) and none of their instances crosses the
    proxy; of the fourth only the missing half is moved."""
    s = site()
    everything = s.pacs.select(SINCE, UNTIL)
    whole = [next(st for st in everything if st.modality == m) for m in ("CT", "MR", "CR")]
    partial = next(st for st in everything if st not in whole and st.instances >= 6)
    half = partial.files[: partial.instances // 2]
    pacsmod.post_instances(s.archive, [f for st in whole for f in st.files] + half)
    preloaded = sop_uids(whole) | {harness.sop_uid(f) for f in half}
    assert s.archive.count_instances() == len(preloaded)

    result = plan(s.gw, *range_args())
    assert result["studies"] == len(everything) and result["already_archived"] == len(whole), result
    assert s.proxy.snapshot()["associations"] == 0

    job_id = start_job(s.gw, *range_args())
    done = wait_job(s.gw, job_id, timeout=90)
    wait_archive_holds(s.archive, sop_uids(everything))
    assert_archive_identical(s, everything)

    moved = sop_uids(everything) - preloaded
    assert s.proxy.stored_uids() == moved, \
        f"crossed though at the archive: {sorted(s.proxy.stored_uids() & preloaded)[:5]}"
    assert s.proxy.duplicates() == {}
    assert studies_found(done) == len(everything), done
    assert done["studies"]["already_archived"] == len(whole), done
    assert done["studies"]["retrieved"] == len(everything) - len(whole), done
    assert done["studies"]["failed"] == 0 and done["failures"] == [], done
    assert done["instances_retrieved"] == len(moved), done


def test_kill_9_mid_backfill_resumes_and_never_fetches_an_instance_twice(site):
    s = site(backfill={"parallel": 1})
    everything = s.pacs.select(SINCE, UNTIL)
    total = instance_count(everything)
    s.proxy.slow_down(0.03)  # ~30 ms per C-STORE: the move takes several seconds
    job_id = start_job(s.gw, *range_args())

    assert wait_until(lambda: s.proxy.stored_count() >= total // 3, 60, 0.05), \
        f"only {s.proxy.stored_count()} of {total} instances moved after 60 s"
    s.gw.kill9()
    before = s.proxy.stored_uids()
    assert 0 < len(before) < total, "killed mid-backfill"

    s.proxy.slow_down(0)
    s.gw.restart()
    done = wait_job(s.gw, job_id, timeout=90)
    assert [j["id"] for j in jobs(s.gw)] == [job_id], "the job continues, no new one"
    wait_archive_holds(s.archive, sop_uids(everything))
    assert_archive_identical(s, everything)

    assert s.proxy.duplicates() == {}, \
        f"fetched twice after the restart: {list(s.proxy.duplicates().items())[:5]}"
    assert s.proxy.stored_uids() <= sop_uids(everything)
    assert studies_found(done) == len(everything), done
    assert done["studies"]["retrieved"] == len(everything) and done["studies"]["failed"] == 0, done
    assert done["days_done"] == done["days_total"] == days_between(SINCE, UNTIL), done
    # what was acknowledged before the kill counts as brought in by the job, once
    assert done["instances_retrieved"] == total, done


def test_a_pacs_that_goes_down_mid_backfill_is_waited_for_and_the_job_resumes(site):
    """kill -9 of the PACS in the middle of a migration: the job waits (its gate names the
    unreachable PACS, no study fails), and once the PACS is back it goes on to the end
    without fetching an instance twice."""
    s = site(backfill={"parallel": 1})
    everything = s.pacs.select(SINCE, UNTIL)
    total = instance_count(everything)
    s.proxy.slow_down(0.05)
    job_id = start_job(s.gw, *range_args())
    assert wait_until(lambda: s.proxy.stored_count() >= total // 4, 60, 0.05), \
        f"only {s.proxy.stored_count()} of {total} instances moved after 60 s"
    s.pacs.orthanc.kill9()
    down = wait_job(s.gw, job_id, lambda j: "unreachable" in (j.get("gate") or ""), timeout=60,
                    what="waiting for the PACS")
    assert f"PACS {PACS_TITLE}" in down["gate"], down
    assert down["state"] == "running" and down["studies"]["failed"] == 0, down

    s.pacs.start()
    s.pacs.set_move_destination(s.gw.ae_title, s.proxy.port)  # REST changes do not survive
    s.proxy.slow_down(0)
    done = wait_job(s.gw, job_id, timeout=120)
    assert done["studies"]["failed"] == 0 and done["failures"] == [], done
    assert done.get("gate") is None, done
    wait_archive_holds(s.archive, sop_uids(everything))
    assert_archive_identical(s, everything)
    assert s.proxy.duplicates() == {}, list(s.proxy.duplicates().items())[:5]
    log = s.gw.log_text()
    assert "waiting for an unreachable peer" in log and "peer reachable again" in log


def test_a_study_the_pacs_cannot_deliver_fails_with_its_status_and_the_rest_goes_on(site):
    """The files of one study are gone from the PACS's storage (its index still lists them):
    its C-MOVE fails; tried max_attempts times, it ends `failed` with the PACS's status as
    reason, and every other study is migrated."""
    since, until = "2024-01-02", "2024-01-04"
    s = site(backfill={"max_attempts": 2, "retry_delay": "1s"})
    scope = s.pacs.select(since, until)
    broken = next(st for st in scope if st.instances >= 4)
    for sop in broken.sop_uids:
        status, _, body = s.pacs.orthanc.request("POST", "/tools/lookup", body=sop.encode())
        assert status == 200, body
        instance = next(r for r in json.loads(body) if r["Type"] == "Instance")["ID"]
        uuid = s.pacs.orthanc.get_json(f"/instances/{instance}/attachments/dicom/info")["Uuid"]
        (s.pacs.orthanc.storage_dir / uuid[:2] / uuid[2:4] / uuid).unlink()
    # Orthanc keeps what it just stored in a memory cache: a restart empties it.
    s.pacs.orthanc.restart()
    s.pacs.set_move_destination(s.gw.ae_title, s.proxy.port)

    job_id = start_job(s.gw, *range_args(since, until))
    done = wait_job(s.gw, job_id, timeout=90)
    rest = [st for st in scope if st is not broken]
    assert done["studies"]["failed"] == 1, done
    assert done["studies"]["retrieved"] == len(rest), done
    assert [f["study"] for f in done["failures"]] == [broken.study_uid], done
    reason = done["failures"][0]["reason"]
    assert "C-MOVE status 0x" in reason and "did not arrive" in reason, reason
    wait_archive_holds(s.archive, sop_uids(rest))
    assert_archive_identical(s, rest)
    assert not (set(broken.sop_uids) & s.proxy.stored_uids())


# --------------------------------------------------------------------------
# reconcile


def test_reconcile_lists_missing_differing_and_archive_only_studies_and_fix_brings_them_back(
        site, tmp_path):
    since, until = "2024-01-02", "2024-01-05"
    # verified studies leave the spool at once: what is missing must come from the PACS
    s = site(spool_extra={"retention": "1s", "segment_size": "1MiB"})
    scope = s.pacs.select(since, until)
    job_id = start_job(s.gw, *range_args(since, until))
    wait_job(s.gw, job_id, timeout=60)
    wait_archive_holds(s.archive, sop_uids(scope))
    assert wait_until(lambda: spool_list(s.gw.spool) == [], 60, 0.5), "verified studies purged"

    missing = next(st for st in scope if st.study_date == "20240103" and st.modality == "CT")
    differs = next(st for st in scope if st is not missing and st.instances >= 4)
    pacsmod.delete_study(s.archive, missing.study_uid)
    removed = differs.sop_uids[1]
    pacsmod.delete_instance(s.archive, removed)
    extra = pacsmod.make_study(tmp_path / "extra", 900, "20240103", "120000", "CT", 3, 1)
    pacsmod.post_instances(s.archive, extra.files)
    moved_before = s.proxy.stored_count()

    report_json, report_csv = tmp_path / "reconcile.json", tmp_path / "reconcile.csv"
    out = ctl(s.gw, "reconcile", "--from", PACS_TITLE, *range_args(since, until),
              "--json", str(report_json), "--csv", str(report_csv))
    assert out.stdout.strip(), "a summary is printed"
    report = json.loads(report_json.read_text())
    assert entries(report, "missing", "study", "pacs_instances", "in_spool") == \
        [{"study": missing.study_uid, "pacs_instances": missing.instances, "in_spool": 0}], report
    assert entries(report, "count_differs", "study", "pacs_instances", "archive_instances") == \
        [{"study": differs.study_uid, "pacs_instances": differs.instances,
          "archive_instances": differs.instances - 1}], report
    assert entries(report, "only_at_archive", "study", "archive_instances") == \
        [{"study": extra.study_uid, "archive_instances": extra.instances}], report
    assert report["matching"] == len(scope) - 2, report

    with open(report_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_COLUMNS, rows[0]
    by_uid = {r[1]: dict(zip(CSV_COLUMNS, r)) for r in rows[1:]}
    assert by_uid[missing.study_uid]["status"] == "missing"
    assert by_uid[missing.study_uid]["study_date"] in (missing.study_date, missing.iso_date)
    assert by_uid[missing.study_uid]["patient_id"] == missing.patient_id
    assert int(by_uid[missing.study_uid]["pacs_instances"]) == missing.instances
    assert int(by_uid[missing.study_uid]["spool_instances"] or 0) == 0
    assert by_uid[differs.study_uid]["status"] == "count_differs"
    assert int(by_uid[differs.study_uid]["archive_instances"]) == differs.instances - 1
    assert by_uid[extra.study_uid]["status"] == "only_at_archive"
    assert int(by_uid[extra.study_uid]["archive_instances"]) == extra.instances
    assert s.proxy.stored_count() == moved_before, "reconcile alone moves nothing"

    fixed_json = tmp_path / "fix.json"
    out = ctl(s.gw, "reconcile", "--from", PACS_TITLE, *range_args(since, until),
              "--json", str(fixed_json), "--fix").stdout
    # {"fix_job": N} in the JSON file; the printed "backfill job N …" line says the same
    fix_job = json.loads(fixed_json.read_text()).get("fix_job")
    if fix_job is None:
        m = re.search(r"backfill job (\d+)", out)
        assert m, f"--fix names no job (neither fix_job in the JSON file nor on stdout):\n{out}"
        fix_job = int(m.group(1))
    assert isinstance(fix_job, int) and fix_job != job_id
    wait_job(s.gw, fix_job, timeout=60)
    wait_archive_holds(s.archive, sop_uids(scope) | set(extra.sop_uids))
    assert_archive_identical(s, [missing, differs])
    # only what was missing crossed again: the study, and the one instance of the other
    assert s.proxy.stored_count() == moved_before + missing.instances + 1
    assert s.proxy.stored[removed] == 2
    assert all(s.proxy.stored[u] == 2 for u in missing.sop_uids)

    again = tmp_path / "again.json"
    ctl(s.gw, "reconcile", "--from", PACS_TITLE, *range_args(since, until), "--json", str(again))
    report = json.loads(again.read_text())
    assert report["missing"] == [] and report["count_differs"] == [], report
    assert [r["study"] for r in report["only_at_archive"]] == [extra.study_uid], report
    assert report["matching"] == len(scope), report


def test_fix_sends_again_from_the_spool_what_the_archive_lost(site, tmp_path):
    """A study delivered, verified and still in the spool (retention not over) disappears
    from the archive: reconcile lists it missing with its instances in the spool, and --fix
    uploads it again from the spool: no C-MOVE, nothing crosses the proxy."""
    since = until = "2024-01-02"
    s = site()
    scope = s.pacs.select(since, until)
    job_id = start_job(s.gw, *range_args(since, until))
    wait_job(s.gw, job_id, timeout=60)
    wait_archive_holds(s.archive, sop_uids(scope))
    lost = scope[0]
    pacsmod.delete_study(s.archive, lost.study_uid)
    moved_before = s.proxy.stored_count()

    report_json = tmp_path / "reconcile.json"
    ctl(s.gw, "reconcile", "--from", PACS_TITLE, *range_args(since, until), "--json", str(report_json), "--fix")
    report = json.loads(report_json.read_text())
    assert entries(report, "missing", "study", "in_spool") == \
        [{"study": lost.study_uid, "in_spool": lost.instances}], report
    fix_job = report["fix_job"]
    assert isinstance(fix_job, int) and fix_job != job_id
    done = wait_job(s.gw, fix_job, timeout=60)
    assert done["studies"]["retrieved"] == 1 and done["instances_retrieved"] == 0, done
    wait_archive_holds(s.archive, sop_uids(scope))
    assert_archive_identical(s, [lost])
    assert s.proxy.stored_count() == moved_before, "sent again from the spool, not fetched from the PACS"


# --------------------------------------------------------------------------
# gates


def test_a_paused_job_moves_nothing_until_resumed(site):
    s = site(backfill={"parallel": 1})
    everything = s.pacs.select(SINCE, UNTIL)
    s.proxy.slow_down(0.05)
    job_id = start_job(s.gw, *range_args())
    assert wait_until(lambda: s.proxy.stored_count() >= 5, 60, 0.05), "the move started"

    ctl(s.gw, "backfill", "pause", "--job", str(job_id))
    paused = wait_job(s.gw, job_id, lambda j: j["state"] == "paused"
                      and j["studies"]["retrieving"] == 0, timeout=30,
                      what="paused with nothing in flight")
    requested = s.proxy.requested_count()
    assert requested < instance_count(everything), "paused before the end"
    # an observation window: no C-STORE sub-operation is asked for while paused
    assert not wait_until(lambda: s.proxy.requested_count() > requested, 3, 0.1), \
        f"{s.proxy.requested_count() - requested} C-STORE sub-operations while paused"
    now = job(s.gw, job_id)
    assert now["state"] == "paused", now
    text = metrics(s.gw)
    for state in ("retrieved", "retrieving"):
        assert metric_sum(text, "passerelle_backfill_studies", state=state) == \
            now["studies"][state], (state, now)
    assert metric_sum(text, "passerelle_backfill_instances_retrieved_total") == \
        now["instances_retrieved"], now

    s.proxy.slow_down(0)
    ctl(s.gw, "backfill", "resume")  # every paused job
    done = wait_job(s.gw, job_id, timeout=90)
    wait_archive_holds(s.archive, sop_uids(everything))
    assert s.proxy.duplicates() == {}
    assert done["studies"]["retrieved"] == len(everything) and done.get("gate") is None, done


@pytest.mark.parametrize("how", ["config", "option"])
def test_a_schedule_window_that_excludes_now_holds_the_job(site, how):
    """[backfill] schedule = ["HH:MM-HH:MM"] (config) or `backfill start --window` (option),
    a window starting two hours from now: the job waits, its gate names the window, nothing
    is moved."""
    start, end = local_window(2)
    window = f"{start}-{end}"
    s = site(backfill={"schedule": [window]} if how == "config" else None)
    args = range_args() + (["--window", window] if how == "option" else [])
    job_id = start_job(s.gw, *args)

    waiting = wait_job(s.gw, job_id, lambda j: bool(j.get("gate")) and start in j["gate"]
                       and end in j["gate"], timeout=30, what="gated by the window")
    assert waiting["state"] != "done", waiting
    assert not wait_until(lambda: s.proxy.requested_count() > 0, 3, 0.1), \
        "C-STORE sub-operations outside the window"
    now = job(s.gw, job_id)
    assert now["studies"]["retrieved"] == 0 and now["instances_retrieved"] == 0, now
    assert s.proxy.snapshot()["associations"] == 0
    assert s.archive.count_instances() == 0


def reload_backfill(gw: Gateway, **settings) -> None:
    """[backfill] = the tests' defaults with `settings`, applied by SIGHUP."""
    reloads = gw.log_text().count("configuration reloaded")
    gw.config.tables = {**(gw.config.tables or {}), "backfill": {**BACKFILL, "find_limit": pacsmod.LIMIT, **settings}}
    gw.config_path.write_text(gw.config.toml())
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: gw.log_text().count("configuration reloaded") > reloads, 10), gw.log_tail()


def test_the_hourly_cap_the_upload_backlog_and_the_free_space_floor_hold_retrievals(site):
    """max_studies_per_hour = 2: two studies, then the job waits, saying why. With the
    archive paused (instances pile up in the spool) and pause_above_queue = 1, no retrieval
    starts once the backlog is there. With pause_below_free above the disk's free space,
    none starts at all. Each gate is lifted by a reload and the job finishes."""
    since = until = "2024-01-03"
    s = site(backfill={"max_studies_per_hour": 2})
    scope = s.pacs.select(since, until)
    job_id = start_job(s.gw, *range_args(since, until))
    capped = wait_job(s.gw, job_id, lambda j: "max_studies_per_hour" in (j.get("gate") or ""), timeout=60,
                      what="held by the hourly cap")
    assert capped["studies"]["retrieved"] + capped["studies"]["already_archived"] == 2, capped
    moved = s.proxy.stored_count()
    assert not wait_until(lambda: s.proxy.stored_count() > moved, 3, 0.1), "moved beyond the cap"

    # The backlog: uploads paused, one instance waiting is already above pause_above_queue = 1.
    ctl(s.gw, "pause", "archive")
    reload_backfill(s.gw, pause_above_queue=1)
    wait_job(s.gw, job_id, lambda j: "await upload" in (j.get("gate") or ""), timeout=30,
             what="held by the upload backlog")

    # The free-space floor: more than the disk has.
    reload_backfill(s.gw, pause_below_free="99%")
    ctl(s.gw, "resume", "archive")
    floor = wait_job(s.gw, job_id, lambda j: "pause_below_free" in (j.get("gate") or ""), timeout=30,
                     what="held by the free-space floor")
    assert floor["state"] == "running", floor
    moved = s.proxy.stored_count()
    assert not wait_until(lambda: s.proxy.stored_count() > moved, 3, 0.1), "moved below the free-space floor"

    reload_backfill(s.gw)
    done = wait_job(s.gw, job_id, timeout=90)
    assert done["studies"]["retrieved"] == len(scope) and done.get("gate") is None, done
    wait_archive_holds(s.archive, sop_uids(scope))
