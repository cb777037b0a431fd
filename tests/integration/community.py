"""The regional community for the C-FIND / C-MOVE / C-GET proxy tests (docs/community.md).

A real Orthanc 1.10 + DICOMweb plugin (tests/integration/orthanc.py) plays the region's
community hub. It is loaded (Orthanc REST `POST /instances`) with the studies of three sites,
each with its own IssuerOfPatientID:

| site | id | emitter | IssuerOfPatientID |
|---|---|---|---|
| CHR Orléans (this box's own site) | 213 | csorl45000 | CHR-ORLEANS |
| CHRU Tours | 401 | cstrs37000 | CHRU-TOURS |
| Imagerie 37 | 1407 | csima37542 | IMAGERIE37 |

    c = build_community(tmp / "community")      # data generated, Orthanc started and loaded
    c.url                                         # http://127.0.0.1:PORT/dicom-web
    c.study("tours_ct_latin1")                    # a CommunityStudy: UIDs, files, what a
                                                  # C-FIND result must say about it
    c.foreign()                                   # the studies of the other sites
    c.original(sop_uid)                           # the Part-10 file that was loaded
    gateway_config(c, move_destinations={"STORESCP": port})   # kwargs for harness.Gateway
    c.stop()

Everything is described by `CommunityStudy` values so that tests compute what they expect
(never a hard-coded count). The data set (STUDIES) has:

- `DURAND^Hélène` at Tours (two studies, ISO_IR 100, one of 2012), at Imagerie 37 (ISO_IR 192)
  and at Orléans (own site, ISO_IR 192); all three carry the same test INS in an Other
  Patient IDs Sequence item;
- PatientID "12345" at Tours (MARTIN^Jean), at Imagerie 37 (PETIT^Zoé) and at Orléans:
  different patients (different issuers);
- CT, MR (two series, one instance JPEG-LS lossless), US, CR, SR (Basic Text SR: report) and
  DOC (Encapsulated PDF: report) instances, study dates from 2012 to 2024, unique accession
  numbers, an InstitutionName that differs from the site directory's name (the directory's
  name wins in C-FIND results);
- `tours_ct_big`: a CT study of BIG_CT_COUNT instances for the move tests;
- `ima_cr_utf8`: KOWALSKI^Łukasz (Ł is not in ISO_IR 100: results travel in ISO_IR 192).
"""

from __future__ import annotations

import json
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

import datagen
from orthanc import Orthanc, OrthancError

PRIVATE_CREATOR = "PASSERELLE"
TAG_PRIVATE_CREATOR = 0x00090010
TAG_SITE_ID = 0x00091001
TAG_EMITTER = 0x00091002
TAG_REPORT = 0x00091003

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"

INS_TEST_OID = "1.2.250.1.213.1.4.10"  # INS-NIR of test identities
HELENE_INS = "270037512345684"

BIG_CT_COUNT = 40


@dataclass(frozen=True)
class Site:
    id: int
    emitter: str
    name: str
    issuer: str

    def directory_entry(self) -> dict:
        return {"id": self.id, "emitter": self.emitter, "name": self.name,
                "issuer_of_patient_id": self.issuer}


ORLEANS = Site(213, "csorl45000", "CHR Orléans", "CHR-ORLEANS")
TOURS = Site(401, "cstrs37000", "CHRU Tours", "CHRU-TOURS")
IMAGERIE37 = Site(1407, "csima37542", "Imagerie 37", "IMAGERIE37")
SITES = [ORLEANS, TOURS, IMAGERIE37]
OWN_SITE = ORLEANS


@dataclass
class CommunitySeries:
    series_uid: str
    modality: str
    number: int
    files: list[Path] = field(default_factory=list)
    sop_uids: list[str] = field(default_factory=list)
    sop_classes: list[str] = field(default_factory=list)
    transfer_syntaxes: list[str] = field(default_factory=list)


@dataclass
class CommunityStudy:
    key: str
    site: Site
    patient_id: str
    patient_name: str          # as the site wrote it (Unicode)
    charset: str | None        # SpecificCharacterSet of its instances
    birth_date: str
    sex: str
    study_uid: str
    study_date: str
    study_time: str
    accession: str
    description: str
    institution: str           # InstitutionName in the instances (the hub's value)
    ins: str | None = None     # INS in an Other Patient IDs Sequence item
    series: list[CommunitySeries] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.site.issuer

    @property
    def own_site(self) -> bool:
        return self.site == OWN_SITE

    @property
    def modalities(self) -> set[str]:
        return {s.modality for s in self.series}

    @property
    def has_report(self) -> bool:
        return bool(self.modalities & {"SR", "DOC"})

    @property
    def files(self) -> list[Path]:
        return [f for s in self.series for f in s.files]

    @property
    def sop_uids(self) -> list[str]:
        return [u for s in self.series for u in s.sop_uids]

    @property
    def n_series(self) -> int:
        return len(self.series)

    @property
    def n_instances(self) -> int:
        return sum(len(s.files) for s in self.series)

    def series_of(self, modality: str) -> CommunitySeries:
        found = [s for s in self.series if s.modality == modality]
        assert len(found) == 1, (self.key, modality)
        return found[0]

    def describe(self) -> dict:
        return {"key": self.key, "site": self.site.issuer, "patient_id": self.patient_id,
                "patient_name": self.patient_name, "study_uid": self.study_uid,
                "study_date": self.study_date, "accession": self.accession,
                "series": [{"uid": s.series_uid, "modality": s.modality, "instances": len(s.files)}
                           for s in self.series]}


# --------------------------------------------------------------------------
# the studies of the region


@dataclass(frozen=True)
class _Spec:
    key: str
    site: Site
    patient_id: str
    patient_name: str
    charset: str | None
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    accession: str
    description: str
    institution: str
    series: tuple  # ((modality, count, kind), ...); kind: "ct", "mr", "mr-jpegls", "us", "cr", "sr", "pdf"
    ins: str | None = None


STUDIES: list[_Spec] = [
    _Spec("tours_ct_latin1", TOURS, "T1001", "DURAND^Hélène", "ISO_IR 100", "19580312", "F",
          "20190314", "093000", "TRS19031401", "TDM THORAX", "CHRU DE TOURS - BRETONNEAU",
          (("CT", 3, "ct"),), HELENE_INS),
    _Spec("tours_mr_2012", TOURS, "T1001", "DURAND^Hélène", "ISO_IR 100", "19580312", "F",
          "20121108", "141500", "TRS12110802", "IRM CEREBRALE", "CHRU DE TOURS - BRETONNEAU",
          (("MR", 2, "mr"),), HELENE_INS),
    _Spec("ima_mr_utf8", IMAGERIE37, "I7001", "DURAND^Hélène", "ISO_IR 192", "19580312", "F",
          "20210622", "110000", "IMA21062201", "IRM GENOU DROIT", "IMAGERIE 37 - TOURS NORD",
          (("MR", 3, "mr"), ("MR", 2, "mr-jpegls")), HELENE_INS),
    _Spec("tours_sr", TOURS, "12345", "MARTIN^Jean", "ISO_IR 100", "19620704", "M",
          "20220110", "080500", "TRS22011003", "TDM ABDOMEN", "CHRU DE TOURS - TROUSSEAU",
          (("CT", 2, "ct"), ("SR", 1, "sr"))),
    _Spec("ima_pdf", IMAGERIE37, "12345", "PETIT^Zoé", "ISO_IR 192", "19900213", "F",
          "20230905", "163000", "IMA23090502", "ECHOGRAPHIE PELVIENNE", "IMAGERIE 37 - TOURS NORD",
          (("US", 2, "us"), ("DOC", 1, "pdf"))),
    _Spec("ima_cr_utf8", IMAGERIE37, "I7002", "KOWALSKI^Łukasz", "ISO_IR 192", "19750101", "M",
          "20150401", "102000", "IMA15040103", "RADIO THORAX", "IMAGERIE 37 - TOURS NORD",
          (("CR", 1, "cr"),)),
    _Spec("tours_ct_big", TOURS, "T1002", "LEFEBVRE^François", "ISO_IR 100", "19480921", "M",
          "20240220", "071000", "TRS24022004", "TDM TAP", "CHRU DE TOURS - BRETONNEAU",
          (("CT", BIG_CT_COUNT, "ct"),)),
    _Spec("orl_ct_own", ORLEANS, "12345", "DURAND^Hélène", "ISO_IR 192", "19580312", "F",
          "20200505", "120000", "ORL20050501", "TDM SINUS", "CHR ORLEANS - LA SOURCE",
          (("CT", 2, "ct"),), HELENE_INS),
]


def _base(spec: _Spec, study_uid: str, series: CommunitySeries, sop_class: str,
          number: int) -> Dataset:
    patient = datagen.Patient(spec.patient_id, spec.patient_name, spec.charset, spec.site.issuer)
    ds = datagen._base_dataset(sop_class, series.modality,
                               datagen.Study(study_uid, series.series_uid, patient), number, None)
    ds.StudyDate = spec.study_date
    ds.StudyTime = spec.study_time
    ds.SeriesDate = spec.study_date
    ds.ContentDate = spec.study_date
    ds.ContentTime = spec.study_time
    ds.AccessionNumber = spec.accession
    ds.StudyDescription = spec.description
    ds.SeriesDescription = f"{spec.description} {series.modality} {series.number}"
    ds.StudyID = spec.accession[-4:]
    ds.SeriesNumber = series.number
    ds.PatientBirthDate = spec.birth_date
    ds.PatientSex = spec.sex
    ds.InstitutionName = spec.institution
    ds.ReferringPhysicianName = ""
    if spec.ins:
        item = Dataset()
        item.PatientID = spec.ins
        item.IssuerOfPatientID = INS_TEST_OID
        item.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = [item]
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _make_sr(path: Path, spec: _Spec, study_uid: str, series: CommunitySeries, number: int) -> Path:
    ds = _base(spec, study_uid, series, BASIC_TEXT_SR, number)
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic Imaging Report")]
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.PerformedProcedureCodeSequence = []
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = [_code("121071", "DCM", "Finding")]
    item.TextValue = "Pas d'anomalie décelable. Absence d'épanchement."
    ds.ContentSequence = [item]
    return datagen.save(ds, path)


def _pdf_bytes(title: str) -> bytes:
    text = f"(Compte rendu {title}) Tj".encode("latin-1")
    body = (b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
            b"2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n"
            b"3 0 obj <</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R>> endobj\n"
            b"4 0 obj <</Length " + str(len(text) + 20).encode() + b">> stream\nBT /F1 12 Tf 72 720 Td "
            + text + b" ET\nendstream endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n")
    return body if len(body) % 2 == 0 else body + b"\n"


def _make_pdf(path: Path, spec: _Spec, study_uid: str, series: CommunitySeries, number: int) -> Path:
    ds = _base(spec, study_uid, series, ENCAPSULATED_PDF, number)
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "Compte rendu d'échographie"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic Imaging Report")]
    ds.AcquisitionDateTime = spec.study_date + spec.study_time
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = _pdf_bytes(spec.accession)
    return datagen.save(ds, path)


def _make_us(path: Path, spec: _Spec, study_uid: str, series: CommunitySeries, number: int) -> Path:
    ds = _base(spec, study_uid, series, US_IMAGE, number)
    datagen._set_mono_pixels(ds, datagen._synthetic_image(96, 128, number, 8, np.uint8), 8)
    return datagen.save(ds, path)


def _make_image(path: Path, spec: _Spec, study_uid: str, series: CommunitySeries, number: int,
                sop_class: str, size: tuple[int, int]) -> Path:
    ds = _base(spec, study_uid, series, sop_class, number)
    if series.modality == "CT":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [0, 0, float(number)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    elif series.modality == "MR":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "NONE", "2D"
    elif series.modality == "CR":
        ds.BodyPartExamined, ds.ViewPosition = "CHEST", "PA"
    seed = zlib.crc32(f"{spec.key}/{series.number}/{number}".encode()) & 0xFFFF
    datagen._set_mono_pixels(ds, datagen._synthetic_image(size[0], size[1], seed, 12), 12)
    return datagen.save(ds, path)


def _generate_study(root: Path, spec: _Spec) -> CommunityStudy:
    study = CommunityStudy(spec.key, spec.site, spec.patient_id, spec.patient_name, spec.charset,
                           spec.birth_date, spec.sex, generate_uid(), spec.study_date,
                           spec.study_time, spec.accession, spec.description, spec.institution,
                           spec.ins)
    for n, (modality, count, kind) in enumerate(spec.series, start=1):
        series = CommunitySeries(generate_uid(), modality, n)
        for i in range(1, count + 1):
            path = root / spec.key / f"s{n}" / f"i{i:04d}.dcm"
            if kind == "ct":
                _make_image(path, spec, study.study_uid, series, i, CT_IMAGE, (128, 128))
            elif kind in ("mr", "mr-jpegls"):
                _make_image(path, spec, study.study_uid, series, i, MR_IMAGE, (96, 96))
                if kind == "mr-jpegls":
                    jls = path.with_suffix(".jls.dcm")
                    datagen.run_dcmtk("dcmcjpls", "+el", path, jls)
                    jls.replace(path)
            elif kind == "cr":
                _make_image(path, spec, study.study_uid, series, i, CR_IMAGE, (256, 200))
            elif kind == "us":
                _make_us(path, spec, study.study_uid, series, i)
            elif kind == "sr":
                _make_sr(path, spec, study.study_uid, series, i)
            elif kind == "pdf":
                _make_pdf(path, spec, study.study_uid, series, i)
            else:
                raise ValueError(kind)
            meta = datagen.file_meta(path)
            series.files.append(path)
            series.sop_uids.append(str(meta.MediaStorageSOPInstanceUID))
            series.sop_classes.append(str(meta.MediaStorageSOPClassUID))
            series.transfer_syntaxes.append(str(meta.TransferSyntaxUID))
        study.series.append(series)
    return study


def generate(root: Path, specs: list[_Spec] | None = None) -> list[CommunityStudy]:
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    return [_generate_study(root, spec) for spec in (specs or STUDIES)]


# --------------------------------------------------------------------------
# the hub


class Community:
    """An Orthanc hub loaded with `studies`."""

    def __init__(self, orthanc: Orthanc, studies: list[CommunityStudy]):
        self.orthanc = orthanc
        self.studies = studies
        self._by_sop = {uid: (study, series, f) for study in studies for series in study.series
                        for uid, f in zip(series.sop_uids, series.files)}

    @property
    def url(self) -> str:
        return self.orthanc.dicomweb_url

    def study(self, key: str) -> CommunityStudy:
        found = [s for s in self.studies if s.key == key]
        assert found, key
        return found[0]

    def by_uid(self, study_uid: str) -> CommunityStudy:
        found = [s for s in self.studies if s.study_uid == study_uid]
        assert found, study_uid
        return found[0]

    def foreign(self) -> list[CommunityStudy]:
        """Studies of the other sites (those a default search folder answers with)."""
        return [s for s in self.studies if not s.own_site]

    def original(self, sop_uid: str) -> Path:
        return self._by_sop[sop_uid][2]

    def locate(self, sop_uid: str) -> tuple[CommunityStudy, CommunitySeries]:
        study, series, _ = self._by_sop[sop_uid]
        return study, series

    @property
    def all_sop_uids(self) -> set[str]:
        return set(self._by_sop)

    def load(self) -> "Community":
        for study in self.studies:
            for f in study.files:
                status, _, body = self.orthanc.request(
                    "POST", "/instances", body=Path(f).read_bytes(),
                    headers={"Content-Type": "application/dicom"})
                if status != 200 or json.loads(body).get("Status") not in ("Success",
                                                                            "AlreadyStored"):
                    raise OrthancError(f"POST /instances {f}: {status} {body[:300]!r}")
        held = self.orthanc.count_instances()
        if held != len(self._by_sop):
            raise OrthancError(f"the hub holds {held} instances, {len(self._by_sop)} loaded")
        return self

    def stop(self) -> None:
        self.orthanc.stop()


def build_community(workdir: Path, specs: list[_Spec] | None = None,
                    studies: list[CommunityStudy] | None = None, **orthanc_kw) -> Community:
    """Generates the data (in workdir/data) unless `studies` are given, starts an Orthanc
    (workdir/orthanc) and loads it."""
    workdir = Path(workdir)
    if studies is None:
        studies = generate(workdir / "data", specs)
    orthanc_kw.setdefault("env", {"TCP_NODELAY": "1"})
    # Utf8: with Orthanc's default Latin1, its DICOMweb plugin drops the characters outside
    # Latin-1 (KOWALSKI^Łukasz comes back as KOWALSKI^ukasz in QIDO-RS).
    orthanc_kw["extra_config"] = {"DefaultEncoding": "Utf8", **(orthanc_kw.get("extra_config") or {})}
    if (workdir / "orthanc").exists():
        shutil.rmtree(workdir / "orthanc")  # a fresh index and storage
    hub = Orthanc(workdir / "orthanc", **orthanc_kw).start()
    try:
        return Community(hub, studies).load()
    except BaseException:
        hub.stop()
        raise


# --------------------------------------------------------------------------
# passerelled's configuration for a community


def site_table(site: Site = OWN_SITE) -> dict:
    return {"id": site.id, "emitter": site.emitter, "name": site.name,
            "issuer_of_patient_id": site.issuer}


def gateway_config(community: Community | str | None = None, *, ae_title: str = "MIRC",
                   destination: str = "community",
                   move_destinations: dict[str, int] | None = None,
                   community_options: dict | None = None,
                   communities: list[dict] | None = None,
                   destinations: dict[str, dict] | None = None,
                   spool_extra: dict | None = None,
                   directory: list[Site] | None = None,
                   **config) -> dict:
    """Keyword arguments for harness.Gateway / start_gateway: [site] = Orléans, a
    `[destinations.<destination>]` (url = the community's DICOMweb root or the URL given,
    upload = false), one `[[community]]` (ae_title -> destination, plus `community_options`,
    e.g. {"exclude_own_site": False, "query_timeout": "2s"}) unless `communities` is given,
    `[[ae]]` = {title: port on 127.0.0.1}, `[[site_directory]]` = the three sites."""
    url = community.url if isinstance(community, Community) else community
    dests = dict(destinations or {})
    if url is not None:
        dests[destination] = {"url": url, "upload": False}
    if communities is None:
        communities = [{"ae_title": ae_title, "destination": destination,
                        **(community_options or {})}]
    cfg = dict(site=site_table(), destinations=dests, communities=communities,
               aes=[{"title": t, "host": "127.0.0.1", "port": p}
                    for t, p in (move_destinations or {}).items()] or None,
               site_directory=[s.directory_entry() for s in (directory or SITES)])
    if spool_extra:
        cfg["spool_extra"] = spool_extra
    cfg.update(config)
    return cfg


# --------------------------------------------------------------------------
# comparing what arrived with the originals


def element_values(ds: Dataset) -> dict:
    """{tag: value} of a data set, recursively (sequence items as lists of dicts); values
    compared independently of the VR the reader chose (implicit VR reads private or
    ambiguous elements differently) and of the text encoding."""
    out = {}
    for elem in ds:
        if elem.tag.group == 0x0002:
            continue
        if elem.VR == "SQ":
            out[int(elem.tag)] = [element_values(item) for item in elem.value]
        else:
            value = elem.value
            if hasattr(value, "original_string"):  # PersonName
                value = str(value)
            elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                value = [str(v) if hasattr(v, "original_string") else v for v in value]
            out[int(elem.tag)] = value
    return out


def dataset_differences(original: Path, received: Path) -> list[str]:
    """What differs between two files' data sets (File Meta excluded): [] when identical.
    Pixel Data and the encapsulated document are compared as bytes (encapsulated pixel data:
    the fragments), every other element by value."""
    a = datagen.read(original)
    b = datagen.read(received)
    problems = []
    if a.file_meta.TransferSyntaxUID.is_compressed or b.file_meta.TransferSyntaxUID.is_compressed:
        if a.file_meta.TransferSyntaxUID != b.file_meta.TransferSyntaxUID:
            problems.append(f"transfer syntax {a.file_meta.TransferSyntaxUID} became "
                            f"{b.file_meta.TransferSyntaxUID}")
    va, vb = element_values(a), element_values(b)
    for tag in sorted(set(va) | set(vb)):
        if tag not in vb:
            problems.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) missing")
        elif tag not in va:
            problems.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) added: {str(vb[tag])[:80]}")
        elif va[tag] != vb[tag]:
            problems.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {str(va[tag])[:60]!r} -> "
                            f"{str(vb[tag])[:60]!r}")
    return problems
