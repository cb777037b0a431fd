"""The site's existing PACS for the backfill (archive migration) tests: a real Orthanc 1.10
(tests/integration/orthanc.py) answering C-FIND / C-MOVE as AE "PACS", loaded with small
CT / MR / CR studies spread over several days, some days holding more studies than the
PACS's `LimitFindResults` (so that passerelled has to split its day queries).

    studies = generate(tmp / "data")                 # PacsStudy values (files on disk)
    pacs = Pacs(tmp / "pacs", studies, limit=5).start().load()
    pacs.dicom_port, pacs.ae_title                   # for passerelled's [[ae]]
    pacs.set_move_destination("PASSERELLE", port)    # where its C-MOVE sub-operations go
    pacs.select(since="2024-01-01", modalities=["CT"])   # the studies a job covers
    expected_by_year_modality(studies)               # what `backfill plan` must report
    pacs.stop()

What this Orthanc (1.10.1, LimitFindResults = N) answers, found with DCMTK findscu/movescu:
- STUDY level, more than N matches: exactly N pending answers, then the final status
  0xFE00 "Cancel: Matching terminated due to Cancel Request" (no Error Comment). Exactly N
  matches: N answers and 0x0000 Success (it looks N + 1 rows up). Same at SERIES level.
- ModalitiesInStudy at STUDY level is honoured (single value or CT\\MR), but then the limit
  counts matching *series*: the database is asked for N + 1 series rows, and the distinct
  studies among them are answered with 0x0000 Success when there are at most N of them. A day
  with 3 MR studies of 3 series each answers 2 of them, Success: the cut is silent.
- StudyTime ranges are honoured and compared as strings: "080000-085959" misses a study at
  "085959.5", "0900" or "23" (short TM forms); "08-085959.999999" catches them all.
- IMAGE level with only StudyInstanceUID (no SeriesInstanceUID): accepted, every instance of
  the study (LimitFindInstances applies there).
- C-MOVE at IMAGE level with SOPInstanceUID = a\\b\\c (with or without StudyInstanceUID /
  SeriesInstanceUID): those instances are sent, Success. An unknown UID in the list is
  skipped silently (not counted as failed); a list of unknown UIDs only, or an unknown study:
  0xC000 "Failed: Unable to process", 0 sub-operations.
- What it sends on C-MOVE is the data set as loaded, byte for byte.

Every value a test expects is computed from the PacsStudy list (never hard-coded).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.uid import generate_uid

import datagen
from orthanc import Orthanc, OrthancError

PACS_AET = "PACS"
LIMIT = 5                       # LimitFindResults of the test PACS
ISSUER = "CHR-ORLEANS"          # every instance carries the site's issuer: nothing is filled in

# --------------------------------------------------------------------------
# the data set
#
# (StudyDate, [(modality, StudyTime, instances per series, series count)])
# - 20231228: two studies, below the limit;
# - 20231229: 7 studies (> LIMIT), no modality holds LIMIT of them, one per hour;
# - 20240101: no study at all; 20240102, 20240105: small days;
# - 20240103: 11 studies, 7 CT (still >= LIMIT once split by modality: split by hour too),
#   with a study just after midnight and one just before midnight;
# - 20240104: exactly LIMIT studies (Orthanc answers them all with Success: complete);
# - 20240108: 4 studies (not capped), 3 of them MR with 3 series each: a C-FIND with
#   ModalitiesInStudy=MR (or CT\MR) on that day comes back short *with Success* from
#   Orthanc 1.10 (its LimitFindResults counts matching series, not studies: see below);
# - 20240109: 6 studies (capped): 4 MR of 2 series each + 2 CT: once split by modality, the MR
#   query is cut silently the same way.
DAYS: list[tuple[str, list[tuple[str, str, int, int]]]] = [
    ("20231228", [("CT", "091500", 8, 1), ("MR", "143000", 6, 2)]),
    ("20231229", [("CT", "080000", 10, 1), ("CT", "091000", 4, 1), ("MR", "100500", 5, 2),
                  ("CR", "111500", 2, 1), ("CT", "120000", 12, 1), ("MR", "133000", 7, 1),
                  ("CR", "145959", 1, 1)]),
    ("20240102", [("CR", "073000", 2, 1), ("CT", "101010", 9, 1), ("MR", "161500", 6, 1)]),
    ("20240103", [("CT", "000512", 6, 1), ("CT", "081500", 8, 1), ("MR", "090000", 5, 2),
                  ("CT", "101500", 7, 1), ("CR", "113000", 2, 1), ("CT", "120500", 10, 1),
                  ("CT", "134500", 5, 2), ("MR", "150000", 6, 1), ("CT", "163000", 9, 1),
                  ("CR", "171500", 1, 1), ("CT", "235930", 4, 1)]),
    ("20240104", [("CT", "083000", 11, 1), ("MR", "094500", 6, 1), ("CR", "104500", 2, 1),
                  ("CT", "140000", 8, 1), ("MR", "153000", 4, 2)]),
    ("20240105", [("CT", "100000", 12, 1)]),
    ("20240108", [("MR", "081000", 3, 3), ("MR", "093000", 4, 3), ("MR", "110000", 3, 3),
                  ("CT", "140000", 6, 1)]),
    ("20240109", [("MR", "080500", 4, 2), ("CT", "091500", 7, 1), ("MR", "102000", 3, 2),
                  ("MR", "113000", 4, 2), ("CT", "130000", 6, 1), ("MR", "151500", 3, 2)]),
]

# Every day of DAYS lies in [FIRST_DAY, LAST_DAY]; jobs of the tests cover that range.
FIRST_DAY, LAST_DAY = "2023-12-27", "2024-01-10"

ROWS = 32  # 32x32x16-bit images: ~2.5 KB each, a few hundred load in seconds


@dataclass
class PacsStudy:
    study_uid: str
    study_date: str            # YYYYMMDD
    study_time: str            # HHMMSS
    modality: str
    patient_id: str
    patient_name: str
    accession: str
    series_uids: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sop_uids: list[str] = field(default_factory=list)
    instance_series: list[str] = field(default_factory=list)  # series UID of each instance

    @property
    def year(self) -> str:
        return self.study_date[:4]

    @property
    def instances(self) -> int:
        return len(self.sop_uids)

    @property
    def iso_date(self) -> str:
        d = self.study_date
        return f"{d[:4]}-{d[4:6]}-{d[6:]}"


_MAKERS = {"CT": datagen.make_ct, "MR": datagen.make_mr, "CR": datagen.make_cr}


def make_study(root: Path, n: int, date: str, time: str, modality: str, per_series: int,
                series_count: int) -> PacsStudy:
    patient = datagen.Patient(f"PACS{n:04d}", f"Patient{n:04d}^Test", issuer=ISSUER)
    study = PacsStudy(generate_uid(), date, time, modality, patient.patient_id, patient.name,
                      f"BF{n:06d}")
    for s in range(1, series_count + 1):
        series = datagen.Study(study.study_uid, generate_uid(), patient)
        study.series_uids.append(series.series_uid)
        for i in range(1, per_series + 1):
            path = root / f"s{n:03d}" / f"se{s}" / f"i{i:03d}.dcm"
            _MAKERS[modality](path, series, i, rows=ROWS, cols=ROWS)
            ds = datagen.read(path)
            ds.StudyDate = date
            ds.StudyTime = time
            ds.SeriesDate = date
            ds.SeriesTime = time
            ds.AccessionNumber = study.accession
            ds.StudyID = str(n)
            ds.SeriesNumber = s
            ds.StudyDescription = f"backfill test {modality} {date}"
            datagen.save(ds, path)
            study.files.append(path)
            study.sop_uids.append(str(ds.SOPInstanceUID))
            study.instance_series.append(series.series_uid)
    return study


def generate(root: Path, days=None) -> list[PacsStudy]:
    """The studies of `days` (default DAYS), written under `root` (emptied first)."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    studies, n = [], 0
    for date, specs in days or DAYS:
        for modality, time, per_series, series_count in specs:
            n += 1
            studies.append(make_study(root, n, date, time, modality, per_series, series_count))
    return studies


# --------------------------------------------------------------------------
# selections and expectations


def _compact(date: str | None) -> str | None:
    return date.replace("-", "") if date else None


def select(studies: list[PacsStudy], since: str | None = None, until: str | None = None,
           modalities=None) -> list[PacsStudy]:
    """The studies a job `--since/--until` (inclusive, YYYY-MM-DD or YYYYMMDD) and
    `--modalities` covers."""
    since, until = _compact(since), _compact(until)
    return [s for s in studies
            if (since is None or s.study_date >= since)
            and (until is None or s.study_date <= until)
            and (not modalities or s.modality in modalities)]


def expected_by_year_modality(studies: list[PacsStudy]) -> list[dict]:
    """[{"year", "modality", "studies", "instances"}] sorted by (year, modality)."""
    table: dict[tuple[str, str], dict] = {}
    for s in studies:
        row = table.setdefault((s.year, s.modality), {"year": s.year, "modality": s.modality,
                                                      "studies": 0, "instances": 0})
        row["studies"] += 1
        row["instances"] += s.instances
    return [table[k] for k in sorted(table)]


def studies_per_day(studies: list[PacsStudy]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in studies:
        out[s.study_date] = out.get(s.study_date, 0) + 1
    return out


def capped_days(studies: list[PacsStudy], limit: int = LIMIT) -> list[str]:
    """Days whose plain STUDY-level C-FIND would come back cut (or look cut: >= limit)."""
    return sorted(d for d, n in studies_per_day(studies).items() if n >= limit)


# --------------------------------------------------------------------------
# any Orthanc (the PACS, or the archive the tests fill or damage directly)


def post_instances(orthanc: Orthanc, files) -> None:
    """REST POST /instances of each file, as it is."""
    for f in files:
        status, _, body = orthanc.request("POST", "/instances", body=Path(f).read_bytes(),
                                          headers={"Content-Type": "application/dicom"})
        if status != 200 or json.loads(body).get("Status") not in ("Success", "AlreadyStored"):
            raise OrthancError(f"POST /instances {f}: {status} {body[:300]!r}")


def orthanc_id(orthanc: Orthanc, uid: str, kind: str) -> str:
    """Orthanc's identifier of the Study / Series / Instance with this DICOM UID."""
    status, _, body = orthanc.request("POST", "/tools/lookup", body=uid.encode())
    found = [r["ID"] for r in json.loads(body) if r.get("Type") == kind] if status == 200 else []
    if not found:
        raise KeyError(f"{kind} {uid}")
    return found[0]


def delete_study(orthanc: Orthanc, study_uid: str) -> None:
    status, _, body = orthanc.request("DELETE", f"/studies/{orthanc_id(orthanc, study_uid, 'Study')}")
    if status != 200:
        raise OrthancError(f"DELETE study {study_uid}: {status} {body[:200]!r}")


def delete_instance(orthanc: Orthanc, sop_uid: str) -> None:
    iid = orthanc_id(orthanc, sop_uid, "Instance")
    status, _, body = orthanc.request("DELETE", f"/instances/{iid}")
    if status != 200:
        raise OrthancError(f"DELETE instance {sop_uid}: {status} {body[:200]!r}")


# --------------------------------------------------------------------------
# the PACS


class Pacs:
    """An Orthanc playing the site's PACS: DICOM AE `ae_title` on its own free port, C-FIND
    answers cut at `limit` (`LimitFindResults`, 0: none), C-FIND / C-MOVE / C-GET allowed from
    any calling AE, the called AE title not checked, and `move_destinations` {aet: port on
    127.0.0.1} in `DicomModalities` (changed later with set_move_destination, through the
    REST API: no restart)."""

    def __init__(self, workdir: Path, studies: list[PacsStudy], *, ae_title: str = PACS_AET,
                 limit: int = LIMIT, move_destinations: dict[str, int] | None = None,
                 extra_config: dict | None = None):
        self.studies = studies
        self.limit = limit
        self.ae_title = ae_title
        modalities = {aet: [aet, "127.0.0.1", port]
                      for aet, port in (move_destinations or {}).items()}
        config = {
            "LimitFindResults": limit,
            "LimitFindInstances": 0,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowMove": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False,
            "DicomModalities": modalities,
            "DicomModalitiesInDatabase": False,
            "SynchronousCMove": True,
            "DicomScuTimeout": 30,
            "DicomAssociationCloseDelay": 0,  # sub-operation associations closed at once
            **(extra_config or {}),
        }
        # TCP_NODELAY: the DCMTK inside Orthanc otherwise stalls ~40 ms per C-STORE.
        self.orthanc = Orthanc(Path(workdir), ae_title=ae_title, extra_config=config,
                               env={"TCP_NODELAY": "1"})
        self._by_sop = {uid: (s, f) for s in studies for uid, f in zip(s.sop_uids, s.files)}

    # addresses
    dicom_port = property(lambda self: self.orthanc.dicom_port)
    http_port = property(lambda self: self.orthanc.http_port)

    def ae_table(self, title: str | None = None) -> dict:
        """passerelled's `[[ae]]` entry for this PACS."""
        return {"title": title or self.ae_title, "host": "127.0.0.1", "port": self.dicom_port}

    def start(self) -> "Pacs":
        self.orthanc.start()
        return self

    def stop(self) -> None:
        self.orthanc.stop()

    def alive(self) -> bool:
        return self.orthanc.alive()

    def load(self) -> "Pacs":
        """Every study into the PACS by REST POST /instances (as the files are)."""
        post_instances(self.orthanc, self.files())
        held = self.orthanc.count_instances()
        if held != len(self._by_sop):
            raise OrthancError(f"the PACS holds {held} instances, {len(self._by_sop)} loaded")
        return self

    def set_move_destination(self, aet: str, port: int, host: str = "127.0.0.1") -> None:
        """Adds or replaces the C-MOVE destination `aet` (PUT /modalities/{aet})."""
        status, _, body = self.orthanc.request(
            "PUT", f"/modalities/{aet}",
            body=json.dumps({"AET": aet, "Host": host, "Port": port}).encode(),
            headers={"Content-Type": "application/json"})
        if status != 200:
            raise OrthancError(f"PUT /modalities/{aet}: {status} {body[:300]!r}")

    # what it holds

    def files(self, studies: list[PacsStudy] | None = None) -> list[Path]:
        return [f for s in (self.studies if studies is None else studies) for f in s.files]

    def sop_uids(self, studies: list[PacsStudy] | None = None) -> set[str]:
        return {u for s in (self.studies if studies is None else studies) for u in s.sop_uids}

    def original(self, sop_uid: str) -> Path:
        return self._by_sop[sop_uid][1]

    def study_of(self, sop_uid: str) -> PacsStudy:
        return self._by_sop[sop_uid][0]

    def study(self, study_uid: str) -> PacsStudy:
        found = [s for s in self.studies if s.study_uid == study_uid]
        assert found, study_uid
        return found[0]

    def select(self, since: str | None = None, until: str | None = None,
               modalities=None) -> list[PacsStudy]:
        return select(self.studies, since, until, modalities)

    def __enter__(self) -> "Pacs":
        return self if self.alive() else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def build_pacs(workdir: Path, studies: list[PacsStudy] | None = None, **kw) -> Pacs:
    """Generates the data (workdir/data) unless `studies` are given, starts the PACS
    (workdir/orthanc, a fresh index) and loads it."""
    workdir = Path(workdir)
    if studies is None:
        studies = generate(workdir / "data")
    if (workdir / "orthanc").exists():
        shutil.rmtree(workdir / "orthanc")
    pacs = Pacs(workdir / "orthanc", studies, **kw).start()
    try:
        return pacs.load()
    except BaseException:
        pacs.stop()
        raise
