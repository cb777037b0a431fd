"""Prior exams from the regional community: the C-FIND / C-MOVE / C-GET proxy (docs/community.md).

The community is a real Orthanc 1.10 + DICOMweb plugin (tests/integration/community.py, started
once for the module) holding the studies of three sites: CHR Orléans (this box's own site,
IssuerOfPatientID CHR-ORLEANS), CHRU Tours (CHRU-TOURS) and Imagerie 37 (IMAGERIE37). Each test
starts its own passerelled whose `[[community]] ae_title = "MIRC"` answers from that hub
(directly, or through a fault proxy when the hub has to be slow or down), and queries it with
DCMTK findscu / movescu / getscu and pynetdicom; C-MOVE sends to a DCMTK storescp listed in
`[[ae]]`. What arrives is compared with the files loaded into the hub; what a C-FIND result
must say is computed from the fixture's description of each study (never hard-coded counts).

Note on the hub: Orthanc 1.10's QIDO-RS matching is case-insensitive but accent-sensitive, and
it does not percent-decode query parameters (`PatientName=MARTIN%5EJean` matches nothing,
`MARTIN^Jean` does); its UID lists are comma-separated. It neither filters on nor returns
`00101002` (Other Patient IDs Sequence). The hub runs with `DefaultEncoding = Utf8` (with the
default Latin1, the DICOMweb plugin drops characters outside Latin-1 from its JSON).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom import evt

import community as cm
import datagen
import harness
from faultproxy import FaultProxy
from harness import (STATUS_CANCEL, STATUS_SUCCESS, StoreSCP, final_of, findscu, getscu,
                     movescu, pending_of, pn_find, pn_get, pn_move, qr_associate, spool_list,
                     wait_until)

FOLDER = "MIRC"            # the [[community]] AE title
CALLING = "PACS_QR"        # the local PACS asking
DEST = "STORESCP"          # the C-MOVE destination ([[ae]])

A700 = 0xA700
A701 = 0xA701
A702 = 0xA702
A801 = 0xA801
A900 = 0xA900
B000 = 0xB000

HANG = 30  # s: "does not hang" bound of any single operation


def is_failure_c(status: int | None) -> bool:
    """C001 family (0xCxxx): unable to process."""
    return status is not None and (status & 0xF000) == 0xC000


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> cm.Community:
    """The regional community (module scope: generated, started and loaded once)."""
    c = cm.build_community(tmp_path_factory.mktemp("community"))
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _hub_logs(request, hub):
    request.node._hubs = [hub.orthanc]  # conftest attaches their logs to failing reports


@pytest.fixture
def scp(tmp_path) -> StoreSCP:
    """The C-MOVE destination: a DCMTK storescp writing into tmp_path/received."""
    s = StoreSCP(tmp_path / "received", DEST).start()
    yield s
    s.stop()


@pytest.fixture
def proxies():
    started: list[FaultProxy] = []

    def start(target_port: int) -> FaultProxy:
        p = FaultProxy("127.0.0.1", target_port).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def proxy(proxies, hub) -> FaultProxy:
    """A fault proxy in front of the community hub (plain forwarding until told otherwise)."""
    return proxies(hub.orthanc.http_port)


@pytest.fixture
def gateway_for(start_gateway, request, hub, tmp_path):
    """Factory: gateway_for(url=None, scp=None, **community.gateway_config options) -> a
    running passerelled whose [[community]] MIRC answers from `url` (default: the hub).
    Every gateway started must still be alive at the end of the test."""

    def start(url: str | None = None, scp: StoreSCP | None = None, **options):
        options.setdefault("move_destinations", {DEST: scp.port} if scp else None)
        return start_gateway(**cm.gateway_config(url or hub.url, **options))

    yield start
    for gw in getattr(request.node, "_gateways", []):
        gw.check_alive()


@pytest.fixture
def gw(gateway_for, scp):
    """passerelled with the default community configuration, moves to `scp`."""
    return gateway_for(scp=scp)


# --------------------------------------------------------------------------
# identifiers and results

STUDY_RETURN_KEYS = ["PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                     "PatientSex", "StudyDate", "StudyTime", "StudyDescription",
                     "AccessionNumber", "StudyInstanceUID", "ModalitiesInStudy",
                     "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                     "InstitutionName"]


def add_private_keys(ds: Dataset) -> Dataset:
    """The PASSERELLE private block: creator (0009,0010), site ID, emitter, report flag."""
    ds.add_new(cm.TAG_PRIVATE_CREATOR, "LO", cm.PRIVATE_CREATOR)
    ds.add_new(cm.TAG_SITE_ID, "IS", "")
    ds.add_new(cm.TAG_EMITTER, "LO", "")
    ds.add_new(cm.TAG_REPORT, "CS", "")
    return ds


def identifier(level: str | None, keys: list[str] = (), charset: str | None = None,
               private: bool = False, **matching) -> Dataset:
    """A C-FIND/C-MOVE identifier: QueryRetrieveLevel (omitted when None), the return keys
    (empty), the matching keys given."""
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    if level is not None:
        ds.QueryRetrieveLevel = level
    for kw in keys:
        setattr(ds, kw, "")
    for kw, value in matching.items():
        setattr(ds, kw, value)
    if private:
        add_private_keys(ds)
    return ds


def study_query(charset: str | None = None, private: bool = True, **matching) -> Dataset:
    return identifier("STUDY", STUDY_RETURN_KEYS, charset, private, **matching)


def text(ds: Dataset, tag) -> str:
    """An element's value as text, whatever VR the reader gave it (private elements read from
    implicit VR are UN bytes)."""
    value = ds[tag].value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip(" \x00")
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip(" \x00")


def modalities(ds: Dataset) -> set[str]:
    value = ds.ModalitiesInStudy
    if isinstance(value, MultiValue):
        return {str(v) for v in value}
    return {str(value)} if value else set()


def tags_of(ds: Dataset) -> set[int]:
    return {int(e.tag) for e in ds}


ALWAYS_ALLOWED = {0x00080005, 0x00080052}


def assert_exactly_requested_keys(request: Dataset, result: Dataset) -> None:
    """A result carries exactly the requested keys, plus (0008,0005) and (0008,0052)."""
    extra = tags_of(result) - tags_of(request) - ALWAYS_ALLOWED
    missing = tags_of(request) - tags_of(result) - ALWAYS_ALLOWED
    fmt = lambda tags: [f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in sorted(tags)]  # noqa: E731
    assert not extra and not missing, f"keys not requested: {fmt(extra)}; requested keys " \
                                      f"missing: {fmt(missing)}\n{result}"
    assert text(result, 0x00080052) == text(request, 0x00080052)


def is_ascii(ds: Dataset) -> bool:
    for elem in ds:
        if elem.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UC") and elem.value:
            raw = str(elem.value)
            if any(ord(ch) > 127 for ch in raw):
                return False
    return True


def find(gw, query: Dataset, model: str = "S", aec: str = FOLDER, aet: str = CALLING,
         **kw) -> list[harness.PnResponse]:
    """Every response to one C-FIND (pynetdicom, one association); asserts a final one came."""
    assoc = qr_associate(gw.port, aec, aet=aet, timeout=HANG)
    assert assoc.is_established, f"association to {aec} refused: {harness.rejection_of(assoc)}"
    try:
        responses = pn_find(assoc, query, model, **kw)
    finally:
        if assoc.is_established:
            assoc.release()
    assert final_of(responses) is not None, \
        f"no final C-FIND response: {[hex(r.status or 0) for r in responses]}"
    return responses


def find_ok(gw, query: Dataset, model: str = "S", **kw) -> list[Dataset]:
    """The identifiers of a C-FIND that must end with Success."""
    responses = find(gw, query, model, **kw)
    final = final_of(responses)
    assert final.status == STATUS_SUCCESS, \
        f"C-FIND final status {final.status:#06x} ({final.error_comment})"
    results = [r.identifier for r in pending_of(responses)]
    assert all(r is not None for r in results), "a pending response without identifier"
    return results


def study_uids(results: list[Dataset]) -> list[str]:
    return [str(r.StudyInstanceUID) for r in results]


def expect_uids(studies) -> set[str]:
    return {s.study_uid for s in studies}


def assert_studies(results: list[Dataset], expected, what: str = "") -> None:
    got = study_uids(results)
    assert len(got) == len(set(got)), f"{what}: a study answered twice"
    want = expect_uids(expected)
    assert set(got) == want, (f"{what}: unexpected {[r.PatientName for r in results if str(r.StudyInstanceUID) not in want]}, "
                              f"missing {[s.key for s in expected if s.study_uid not in got]}")


def assert_study_result(result: Dataset, study: cm.CommunityStudy) -> None:
    """Everything a STUDY-level result says about `study` (docs/community.md table)."""
    where = study.key
    assert str(result.PatientName) == study.patient_name, where
    assert result.PatientID == study.patient_id, where
    assert result.IssuerOfPatientID == study.issuer, where
    assert result.PatientBirthDate == study.birth_date, where
    assert result.PatientSex == study.sex, where
    assert result.StudyDate == study.study_date, where
    assert str(result.StudyTime).startswith(study.study_time), where
    assert result.StudyDescription == study.description, where
    assert result.AccessionNumber == study.accession, where
    assert modalities(result) == study.modalities, where
    assert int(result.NumberOfStudyRelatedSeries) == study.n_series, where
    assert int(result.NumberOfStudyRelatedInstances) == study.n_instances, where
    assert result.InstitutionName == study.site.name, \
        f"{where}: InstitutionName is the site directory's name, not {result.InstitutionName!r}"
    assert text(result, cm.TAG_PRIVATE_CREATOR) == cm.PRIVATE_CREATOR, where
    assert text(result, cm.TAG_SITE_ID) == str(study.site.id), where
    assert text(result, cm.TAG_EMITTER) == study.site.emitter, where
    assert text(result, cm.TAG_REPORT) == ("YES" if study.has_report else "NO"), where


def helene_studies(hub: cm.Community, include_own: bool = False):
    return [s for s in hub.studies if s.patient_name == "DURAND^Hélène"
            and (include_own or not s.own_site)]


# --------------------------------------------------------------------------
# associations


def test_community_ae_answers_echo_and_applies_allowed_calling_aets(gateway_for):
    gw = gateway_for(allowed_calling_aets=[CALLING, "PYSCU"])
    assert harness.pn_echo(gw.port, aet=CALLING, aec=FOLDER) == STATUS_SUCCESS
    res = harness.echoscu(gw.port, aet=CALLING, aec=FOLDER)
    assert res.returncode == 0, res.output
    rejection = harness.association_rejection(gw.port, aet="INTRUDER", aec=FOLDER)
    assert rejection == (1, 1, 3), f"calling AE not allowed: rejected (1, 1, 3), got {rejection}"
    # the storage AE title still answers as before
    assert harness.pn_echo(gw.port, aet=CALLING, aec=gw.ae_title) == STATUS_SUCCESS


# --------------------------------------------------------------------------
# C-FIND, Study Root, STUDY level: matching


@pytest.mark.parametrize("name", ["DURAND^HELENE", "durand^helene", "Durand^Helene", "DUR*",
                                  "dur*", "*HELENE", "*helene", "DURAND^H?L?NE", "d?rand^*"])
def test_find_names_case_and_accent_insensitive_findscu(gw, hub, tmp_path, name):
    """findscu (DCMTK, -X: each result read back from its file) finds `DURAND^Hélène` at the
    other sites (Tours twice, Imagerie 37), whichever way the name is typed."""
    res = findscu(gw.port, ["QueryRetrieveLevel=STUDY", f"PatientName={name}", "StudyInstanceUID",
                            "PatientID", "IssuerOfPatientID", "StudyDate"],
                  aet=CALLING, aec=FOLDER, workdir=tmp_path / "find")
    assert res.status == STATUS_SUCCESS, res.output[-3000:]
    assert len(res.datasets) == len(res.pending)
    assert_studies(res.datasets, helene_studies(hub), name)
    for ds in res.datasets:
        assert str(ds.PatientName) == "DURAND^Hélène"
        # the request had no Specific Character Set (default repertoire): é does not fit
        assert ds.SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.parametrize("pattern,predicate", [
    ("MART?N^JEAN", lambda s: s.patient_name == "MARTIN^Jean"),
    ("*^JEAN", lambda s: s.patient_name == "MARTIN^Jean"),
    ("LEFEBVRE^FRAN?OIS", lambda s: s.patient_name == "LEFEBVRE^François"),  # ? is one character: ç
    ("KOWALSKI^*", lambda s: s.patient_name == "KOWALSKI^Łukasz"),
    ("P?TIT^ZOE", lambda s: s.patient_name == "PETIT^Zoé"),
])
def test_find_name_wildcards(gw, hub, pattern, predicate):
    results = find_ok(gw, study_query(PatientName=pattern))
    assert_studies(results, [s for s in hub.foreign() if predicate(s)], pattern)


@pytest.mark.parametrize("key,value", [
    ("AccessionNumber", "TRS*"),
    ("AccessionNumber", "IMA2?0*"),
    ("StudyDescription", "IRM*"),
    ("StudyDescription", "*THORAX"),
])
def test_find_wildcards_on_other_keys(gw, hub, key, value):
    """Wildcards on LO/SH keys (matched case-sensitively, as PS3.4 says for everything but PN)."""
    import fnmatch
    attr = {"AccessionNumber": "accession", "StudyDescription": "description"}[key]
    want = [s for s in hub.foreign() if fnmatch.fnmatchcase(getattr(s, attr), value)]
    assert want, "the fixture has matching studies"
    assert_studies(find_ok(gw, study_query(**{key: value})), want, f"{key}={value}")


@pytest.mark.parametrize("dates", ["20190101-20211231", "-20151231", "20230101-", "20220110",
                                   "20000101-20101231"])
def test_find_study_date_ranges(gw, hub, dates):
    lo, _, hi = dates.partition("-") if "-" in dates else (dates, "", dates)
    want = [s for s in hub.foreign() if (not lo or s.study_date >= lo) and (not hi or s.study_date <= hi)]
    results = find_ok(gw, study_query(StudyDate=dates))
    assert_studies(results, want, dates)
    for r in results:
        assert (not lo or r.StudyDate >= lo) and (not hi or r.StudyDate <= hi)


def test_find_study_uid_list(gw, hub):
    wanted = [hub.study("tours_sr"), hub.study("ima_cr_utf8"), hub.study("orl_ct_own")]
    results = find_ok(gw, study_query(StudyInstanceUID="\\".join(s.study_uid for s in wanted)))
    assert_studies(results, [s for s in wanted if not s.own_site], "UID list")


@pytest.mark.parametrize("key,value,attr", [
    ("PatientID", "12345", "patient_id"),
    ("PatientID", "T1001", "patient_id"),
    ("IssuerOfPatientID", "IMAGERIE37", "issuer"),
    ("AccessionNumber", "TRS22011003", "accession"),
    ("PatientSex", "M", "sex"),
    ("PatientBirthDate", "19580312", "birth_date"),
])
def test_find_single_values(gw, hub, key, value, attr):
    want = [s for s in hub.foreign() if getattr(s, attr) == value]
    assert want
    results = find_ok(gw, study_query(**{key: value}))
    assert_studies(results, want, f"{key}={value}")


@pytest.mark.parametrize("modality", ["SR", "DOC", "MR", "CT", "US"])
def test_find_modalities_in_study(gw, hub, modality):
    results = find_ok(gw, study_query(ModalitiesInStudy=modality))
    assert_studies(results, [s for s in hub.foreign() if modality in s.modalities], modality)


def test_find_universal_what_each_result_says(gw, hub):
    """Every key empty: every study of the other sites, each result carrying exactly the
    requested keys with the values of the table of docs/community.md: producing site from
    the site directory, report flag, counts, modalities."""
    query = study_query()
    results = find_ok(gw, query)
    assert_studies(results, hub.foreign(), "universal")
    for result in results:
        study = hub.by_uid(str(result.StudyInstanceUID))
        assert_exactly_requested_keys(query, result)
        assert_study_result(result, study)
        if is_ascii(result):
            assert "SpecificCharacterSet" not in result, \
                f"{study.key}: ASCII result with (0008,0005) {result.SpecificCharacterSet!r}"
        else:
            assert result.SpecificCharacterSet == "ISO_IR 192", study.key
    flags = {hub.by_uid(str(r.StudyInstanceUID)).key: text(r, cm.TAG_REPORT) for r in results}
    assert flags["tours_sr"] == "YES" and flags["ima_pdf"] == "YES", flags
    assert flags["tours_ct_big"] == "NO", flags


def test_find_returns_only_the_requested_keys(gw, hub):
    """A few keys only (no private block): nothing else comes back."""
    query = identifier("STUDY", ["StudyInstanceUID", "StudyDate"], PatientID="12345")
    results = find_ok(gw, query)
    assert_studies(results, [s for s in hub.foreign() if s.patient_id == "12345"])
    for r in results:
        assert_exactly_requested_keys(query, r)
        assert "SpecificCharacterSet" not in r  # every value ASCII


def test_find_key_the_hub_does_not_return_comes_back_empty(gw, hub):
    """PatientAge / OtherPatientNames are requested: present in each result (empty or not)."""
    query = identifier("STUDY", ["StudyInstanceUID", "PatientAge", "OtherPatientNames",
                                 "ReferringPhysicianName"], PatientID="T1002")
    results = find_ok(gw, query)
    assert_studies(results, [hub.study("tours_ct_big")])
    assert_exactly_requested_keys(query, results[0])


# --------------------------------------------------------------------------
# C-FIND: Specific Character Set


def test_find_request_in_iso_ir_100_answers_in_iso_ir_100(gw, hub):
    """The request's (0008,0005) decodes its values (Hélène in Latin-1); results whose values
    all fit are encoded in ISO_IR 100 (checked on the bytes, not only after decoding)."""
    query = study_query(charset="ISO_IR 100", PatientName="DURAND^Hélène")
    responses = find(gw, query)
    assert final_of(responses).status == STATUS_SUCCESS
    results = [r.identifier for r in pending_of(responses)]
    assert_studies(results, helene_studies(hub), "ISO_IR 100 request")
    for r in results:
        assert r.SpecificCharacterSet == "ISO_IR 100"
        assert str(r.PatientName) == "DURAND^Hélène"
        raw = r["PatientName"].value
        assert raw.original_string == "DURAND^Hélène".encode("latin-1"), raw.original_string
        assert r.InstitutionName in (cm.TOURS.name, cm.IMAGERIE37.name)


def test_find_value_outside_the_request_charset_comes_in_utf8(gw, hub):
    """Ł is not in ISO_IR 100: that result travels in ISO_IR 192."""
    results = find_ok(gw, study_query(charset="ISO_IR 100", PatientName="KOWALSKI*"))
    assert_studies(results, [hub.study("ima_cr_utf8")])
    assert results[0].SpecificCharacterSet == "ISO_IR 192"
    assert str(results[0].PatientName) == "KOWALSKI^Łukasz"


def test_find_utf8_request_with_accented_uppercase(gw, hub):
    results = find_ok(gw, study_query(charset="ISO_IR 192", PatientName="DURAND^HÉLÈNE"))
    assert_studies(results, helene_studies(hub), "HÉLÈNE")
    for r in results:
        assert r.SpecificCharacterSet == "ISO_IR 192"
        assert str(r.PatientName) == "DURAND^Hélène"


def test_findscu_query_file_in_latin1(gw, hub, tmp_path):
    """The same through DCMTK: findscu's base query from a file in ISO_IR 100, results read
    from the rsp*.dcm files it writes."""
    query = study_query(charset="ISO_IR 100", PatientName="durand^hélène")
    res = findscu(gw.port, query=query, aet=CALLING, aec=FOLDER, workdir=tmp_path / "find")
    assert res.status == STATUS_SUCCESS, res.output[-3000:]
    assert_studies(res.datasets, helene_studies(hub))
    for ds in res.datasets:
        assert ds.SpecificCharacterSet == "ISO_IR 100"
        assert str(ds.PatientName) == "DURAND^Hélène"
        assert_study_result(ds, hub.by_uid(str(ds.StudyInstanceUID)))


# --------------------------------------------------------------------------
# C-FIND: own site, patients, series, images


def test_own_site_excluded_by_default_included_with_the_option(gateway_for, hub):
    default = gateway_for()
    assert_studies(find_ok(default, study_query()), hub.foreign(), "exclude_own_site default")
    everything = gateway_for(community_options={"exclude_own_site": False})
    results = find_ok(everything, study_query())
    assert_studies(results, hub.studies, "exclude_own_site = false")
    own = [r for r in results if str(r.StudyInstanceUID) == hub.study("orl_ct_own").study_uid][0]
    assert_study_result(own, hub.study("orl_ct_own"))  # site 213, csorl45000, "CHR Orléans"
    excluded = gateway_for(community_options={"exclude_own_site": True})
    assert_studies(find_ok(excluded, study_query(PatientID="12345")),
                   [s for s in hub.foreign() if s.patient_id == "12345"])


def patient_query(**matching) -> Dataset:
    return identifier("PATIENT", ["PatientName", "PatientID", "IssuerOfPatientID",
                                  "PatientBirthDate", "PatientSex",
                                  "NumberOfPatientRelatedStudies"], **matching)


def patients_of(studies) -> dict[tuple[str, str], list[cm.CommunityStudy]]:
    groups: dict[tuple[str, str], list[cm.CommunityStudy]] = {}
    for s in studies:
        groups.setdefault((s.patient_id, s.issuer), []).append(s)
    return groups


def assert_patients(results: list[Dataset], studies) -> None:
    want = patients_of(studies)
    got = {(str(r.PatientID), str(r.IssuerOfPatientID)): r for r in results}
    assert len(got) == len(results), "one patient answered twice"
    assert set(got) == set(want), f"patients {sorted(got)} != {sorted(want)}"
    for key, r in got.items():
        assert str(r.PatientName) == want[key][0].patient_name
        assert r.PatientBirthDate == want[key][0].birth_date
        assert int(r.NumberOfPatientRelatedStudies) == len(want[key]), key


def test_patient_root_patient_level_same_id_two_issuers_two_patients(gateway_for, hub):
    gw = gateway_for()
    query = patient_query(PatientID="12345")
    results = find_ok(gw, query, model="P")
    assert len(results) == 2, [(r.PatientName, r.IssuerOfPatientID) for r in results]
    assert_patients(results, [s for s in hub.foreign() if s.patient_id == "12345"])
    for r in results:
        assert_exactly_requested_keys(query, r)
    # the own site's "12345" is a third patient when the own site is not left out
    everything = gateway_for(community_options={"exclude_own_site": False})
    assert_patients(find_ok(everything, patient_query(PatientID="12345"), model="P"),
                    [s for s in hub.studies if s.patient_id == "12345"])


def test_patient_root_patient_level_by_name_groups_by_issuer(gw, hub):
    """DURAND^Hélène: T1001 at Tours (2 studies) and I7001 at Imagerie 37 (1): two patients."""
    results = find_ok(gw, patient_query(PatientName="DURAND^HELENE"), model="P")
    assert_patients(results, helene_studies(hub))


def test_patient_root_study_level(gw, hub):
    query = identifier("STUDY", ["StudyInstanceUID", "StudyDate", "ModalitiesInStudy"],
                       PatientID="12345", IssuerOfPatientID="IMAGERIE37")
    results = find_ok(gw, query, model="P")
    assert_studies(results, [hub.study("ima_pdf")])
    assert modalities(results[0]) == {"US", "DOC"}


def test_series_level(gw, hub):
    study = hub.study("ima_mr_utf8")
    query = identifier("SERIES", ["SeriesInstanceUID", "Modality", "SeriesNumber",
                                  "NumberOfSeriesRelatedInstances"], StudyInstanceUID=study.study_uid)
    results = find_ok(gw, query)
    got = {str(r.SeriesInstanceUID): r for r in results}
    assert set(got) == {s.series_uid for s in study.series}
    for series in study.series:
        r = got[series.series_uid]
        assert r.Modality == series.modality
        assert int(r.SeriesNumber) == series.number
        assert int(r.NumberOfSeriesRelatedInstances) == len(series.files)
        assert_exactly_requested_keys(query, r)


@pytest.mark.parametrize("key", ["tours_sr", "ima_pdf"])
def test_image_level(gw, hub, key):
    study = hub.study(key)
    for series in study.series:
        query = identifier("IMAGE", ["SOPInstanceUID", "SOPClassUID", "InstanceNumber"],
                           StudyInstanceUID=study.study_uid, SeriesInstanceUID=series.series_uid)
        results = find_ok(gw, query)
        assert {str(r.SOPInstanceUID) for r in results} == set(series.sop_uids), series.modality
        for r in results:
            i = series.sop_uids.index(str(r.SOPInstanceUID))
            assert r.SOPClassUID == series.sop_classes[i]
            assert int(r.InstanceNumber) == i + 1
            assert_exactly_requested_keys(query, r)


def test_study_root_series_level_findscu_counts(gw, hub, tmp_path):
    study = hub.study("tours_sr")
    res = findscu(gw.port, ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study.study_uid}",
                            "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances"],
                  aet=CALLING, aec=FOLDER, workdir=tmp_path / "find")
    assert res.status == STATUS_SUCCESS, res.output[-3000:]
    got = {str(d.SeriesInstanceUID): (d.Modality, int(d.NumberOfSeriesRelatedInstances))
           for d in res.datasets}
    assert got == {s.series_uid: (s.modality, len(s.files)) for s in study.series}


def test_find_by_ins_in_other_patient_ids_sequence(gateway_for, proxy, hub):
    """An INS (Other Patient IDs Sequence item, test OID) is sent to the hub as nested keys
    (seen at the proxy). A result that carries the sequence is checked against it; one that
    does not (Orthanc 1.10 neither filters on it nor returns it) cannot be vouched for: it is
    answered only if the other keys match, as FF01 (optional key not supported)."""
    gw = gateway_for(proxy.url + "/dicom-web")
    item = Dataset()
    item.PatientID = cm.HELENE_INS
    item.IssuerOfPatientID = cm.INS_TEST_OID
    query = identifier("STUDY", ["StudyInstanceUID", "PatientID", "IssuerOfPatientID"],
                       PatientName="DURAND^HELENE")
    query.OtherPatientIDsSequence = [item]
    responses = find(gw, query)
    assert final_of(responses).status == STATUS_SUCCESS, final_of(responses)
    pending = pending_of(responses)
    got = set(study_uids([r.identifier for r in pending]))
    assert got == expect_uids(helene_studies(hub)), "INS and name: the patient's studies at other sites"
    qido = [line for line, _, _ in proxy.requests if "/studies" in line]
    assert any(f"00101002.00100020={cm.HELENE_INS}" in line and
               f"00101002.00100021={cm.INS_TEST_OID}" in line for line in qido), \
        f"the INS did not reach the hub as nested keys: {qido}"
    for r in pending:
        assert "OtherPatientIDsSequence" in r.identifier, "a requested key is missing"
        # Orthanc returns no Other Patient IDs: each match is flagged as not checked on the INS.
        assert r.status == 0xFF01, f"{r.status:#06x}"


def test_find_by_ins_alone_is_refused_when_the_hub_cannot_check_it(gateway_for, hub):
    """With only the INS as key and a hub that ignores it, every study of the region would
    match: the C-FIND fails (Cxxx) with an explanation instead of showing other patients."""
    gw = gateway_for()
    item = Dataset()
    item.PatientID = cm.HELENE_INS
    item.IssuerOfPatientID = cm.INS_TEST_OID
    query = identifier("STUDY", ["StudyInstanceUID", "PatientName"])
    query.OtherPatientIDsSequence = [item]
    responses = find(gw, query)
    final = final_of(responses)
    assert final.status & 0xF000 == 0xC000, f"{final.status:#06x}"
    assert "INS" in (final.error_comment or ""), final
    assert not pending_of(responses), "no study may be shown"
    gw.check_alive()


# --------------------------------------------------------------------------
# C-FIND: statuses


@pytest.mark.parametrize("case", ["no level", "unknown level", "PATIENT in Study Root",
                                  "SERIES without StudyInstanceUID",
                                  "Patient Root STUDY without PatientID"])
def test_find_bad_identifier_a900(gw, case):
    model = "S"
    if case == "no level":
        query = identifier(None, ["StudyInstanceUID", "PatientName"])
    elif case == "unknown level":
        query = identifier("NOTALEVEL", ["StudyInstanceUID"])
    elif case == "PATIENT in Study Root":
        query = identifier("PATIENT", ["PatientID", "PatientName"])
    elif case == "SERIES without StudyInstanceUID":
        query = identifier("SERIES", ["SeriesInstanceUID", "Modality"])
    else:
        query = identifier("STUDY", ["StudyInstanceUID", "PatientName"])
        model = "P"
    responses = find(gw, query, model=model)
    final = final_of(responses)
    assert final.status == A900, f"{case}: final status {final.status:#06x}"
    assert not pending_of(responses), f"{case}: results before the failure"
    # the gateway still serves
    assert find_ok(gw, study_query(PatientID="T1002"))


def test_find_more_than_max_results_a700(gateway_for, hub):
    gw = gateway_for(community_options={"max_results": 2})
    responses = find(gw, study_query())
    assert len(pending_of(responses)) == 2, [hex(r.status) for r in responses]
    assert final_of(responses).status == A700
    assert len(find_ok(gw, study_query(PatientID="12345"))) == 2  # 2 results: not more than 2


def test_cancel_during_find(gateway_for, proxy, hub):
    """The hub answers each request 3 s late; a C-CANCEL 0.5 s after the C-FIND ends it with
    Cancel (FE00), without waiting for the whole answer to be paged through."""
    gw = gateway_for(proxy.url + "/dicom-web", community_options={"query_timeout": "10s"})
    proxy.delay(3.0)
    t0 = time.monotonic()
    responses = find(gw, study_query(), cancel_after=0.5)
    elapsed = time.monotonic() - t0
    assert final_of(responses).status == STATUS_CANCEL, [hex(r.status or 0) for r in responses]
    assert elapsed < 10, f"the cancelled C-FIND took {elapsed:.1f}s"
    assert len(pending_of(responses)) <= len(hub.foreign())
    proxy.forward()
    assert_studies(find_ok(gw, study_query()), hub.foreign(), "after the cancel")
    rows = wait_rows(gw, 2)
    assert [(r["operation"], r["status"].upper()) for r in rows] == [("FIND", "FE00"), ("FIND", "0000")], \
        "the cancelled C-FIND is recorded too"


def test_community_down_find_fails_promptly_then_recovers(gateway_for, proxy, hub):
    gw = gateway_for(proxy.url + "/dicom-web", community_options={"query_timeout": "2s"})
    proxy.down()
    t0 = time.monotonic()
    responses = find(gw, study_query(PatientID="12345"))
    elapsed = time.monotonic() - t0
    final = final_of(responses)
    assert is_failure_c(final.status), f"final status {final.status:#06x}"
    assert final.error_comment, "the Error Comment says what went wrong"
    assert not pending_of(responses)
    assert elapsed < 2 + 8, f"the failure took {elapsed:.1f}s"
    proxy.up()
    assert_studies(find_ok(gw, study_query(PatientID="12345")),
                   [s for s in hub.foreign() if s.patient_id == "12345"], "hub back")


def test_community_unreachable_port_fails_promptly(gateway_for):
    gw = gateway_for(f"http://127.0.0.1:{harness.free_port()}/dicom-web",
                     community_options={"query_timeout": "2s"})
    t0 = time.monotonic()
    final = final_of(find(gw, study_query()))
    assert is_failure_c(final.status), f"final status {final.status:#06x}"
    assert time.monotonic() - t0 < 10


def test_slow_hub_find_fails_after_query_timeout_never_hangs(gateway_for, proxy, hub):
    gw = gateway_for(proxy.url + "/dicom-web", community_options={"query_timeout": "2s"})
    proxy.delay(8.0)
    t0 = time.monotonic()
    responses = find(gw, study_query(PatientID="T1001"))
    elapsed = time.monotonic() - t0
    final = final_of(responses)
    assert is_failure_c(final.status), f"final status {final.status:#06x}"
    assert elapsed < 2 + 6, f"query_timeout 2s, the C-FIND failed after {elapsed:.1f}s"
    proxy.forward()
    assert_studies(find_ok(gw, study_query(PatientID="T1001")),
                   [s for s in hub.foreign() if s.patient_id == "T1001"], "hub fast again")


def test_two_search_folders_answer_from_their_own_hub(gateway_for, hub, tmp_path):
    bourges = cm.Site(402, "csbrg18000", "CH Bourges", "CH-BOURGES")
    spec = cm._Spec("brg_ct", bourges, "B5001", "DURAND^Hélène", "ISO_IR 192", "19580312", "F",
                    "20180212", "100000", "BRG18021201", "TDM CEREBRALE", "CH JACQUES COEUR",
                    (("CT", 2, "ct"),), cm.HELENE_INS)
    other = cm.build_community(tmp_path / "other-community", specs=[spec])
    try:
        gw = gateway_for(
            destinations={"other": {"url": other.url, "upload": False}},
            communities=[{"ae_title": FOLDER, "destination": "community"},
                         {"ae_title": "MIRC2", "destination": "other"}],
            directory=cm.SITES + [bourges])
        first = find_ok(gw, study_query(PatientName="DURAND^HELENE"), aec=FOLDER)
        second = find_ok(gw, study_query(PatientName="DURAND^HELENE"), aec="MIRC2")
        assert_studies(first, helene_studies(hub), FOLDER)
        assert_studies(second, other.studies, "MIRC2")
        assert_study_result(second[0], other.studies[0])  # site 402, csbrg18000, CH Bourges
        assert_studies(find_ok(gw, study_query(), aec="MIRC2"), other.studies, "MIRC2 universal")
    finally:
        other.stop()


# --------------------------------------------------------------------------
# C-MOVE


def assert_received_identical(hub: cm.Community, scp: StoreSCP, sop_uids) -> None:
    received = scp.by_sop()
    assert set(received) == set(sop_uids), \
        f"missing {len(set(sop_uids) - set(received))}, unexpected {len(set(received) - set(sop_uids))}"
    for uid in sop_uids:
        diff = cm.dataset_differences(hub.original(uid), received[uid])
        assert not diff, f"{uid} changed on the way: {diff[:8]}"


def assert_counts(pending, total: int) -> None:
    """Each pending response: remaining + completed + failed + warning = total, completed
    never decreasing; one per sub-operation (the last may be replaced by the final one)."""
    assert len(pending) >= total - 1, f"{len(pending)} pending responses for {total} sub-operations"
    last = 0
    for p in pending:
        counts = [p.remaining, p.completed, p.failed, p.warning]
        assert None not in counts, f"pending response without counts: {counts}"
        assert sum(counts) == total, counts
        assert p.completed >= last
        last = p.completed


@pytest.mark.parametrize("key", ["tours_ct_big", "tours_sr", "ima_mr_utf8", "ima_pdf"])
def test_move_study_with_movescu(gw, hub, scp, tmp_path, key):
    """movescu (DCMTK), Study Root, STUDY level, to the storescp of [[ae]]: every instance
    arrives (CT, SR, MR with JPEG-LS instances kept in their transfer syntax, US + PDF), data
    sets identical to what the site loaded; a pending response per sub-operation; 0000."""
    study = hub.study(key)
    res = movescu(gw.port, DEST, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                  aet=CALLING, aec=FOLDER, workdir=tmp_path / "move")
    assert res.status == STATUS_SUCCESS, res.output[-4000:]
    assert res.final.completed == study.n_instances, res.final
    assert res.final.failed in (0, None) and res.final.warning in (0, None), res.final
    assert_counts(res.pending, study.n_instances)
    assert_received_identical(hub, scp, study.sop_uids)


def test_move_series_level_pynetdicom_counts(gw, hub, scp):
    study = hub.study("ima_mr_utf8")
    series = study.series[0]
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    try:
        responses = pn_move(assoc, DEST, identifier("SERIES", StudyInstanceUID=study.study_uid,
                                                    SeriesInstanceUID=series.series_uid))
    finally:
        assoc.release()
    final = final_of(responses)
    assert final.status == STATUS_SUCCESS, [hex(r.status or 0) for r in responses]
    assert final.completed == len(series.files) and final.failed in (0, None)
    assert_counts(pending_of(responses), len(series.files))
    assert_received_identical(hub, scp, series.sop_uids)


def test_move_image_level_uid_list_compressed_kept(gw, hub, scp):
    """IMAGE level with a SOP Instance UID list: exactly those; they are JPEG-LS lossless in the
    hub and arrive so (the gateway never decodes pixel data)."""
    study = hub.study("ima_mr_utf8")
    series = study.series[1]
    assert set(series.transfer_syntaxes) == {"1.2.840.10008.1.2.4.80"}
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    try:
        responses = pn_move(assoc, DEST, identifier(
            "IMAGE", StudyInstanceUID=study.study_uid, SeriesInstanceUID=series.series_uid,
            SOPInstanceUID="\\".join(series.sop_uids)))
        one = study.series[0].sop_uids[1]
        single = pn_move(assoc, DEST, identifier(
            "IMAGE", StudyInstanceUID=study.study_uid, SeriesInstanceUID=study.series[0].series_uid,
            SOPInstanceUID=one), msg_id=2)
    finally:
        assoc.release()
    assert final_of(responses).status == STATUS_SUCCESS, [hex(r.status or 0) for r in responses]
    assert final_of(single).status == STATUS_SUCCESS
    assert final_of(single).completed == 1
    assert_received_identical(hub, scp, series.sop_uids + [one])
    for uid in series.sop_uids:
        meta = datagen.file_meta(scp.by_sop()[uid])
        assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"


def test_move_patient_level_patient_root(gw, hub, scp):
    """Patient Root, PATIENT level, PatientID + IssuerOfPatientID: every study of that
    patient at that site, nobody else's."""
    studies = [s for s in hub.foreign() if s.patient_id == "T1001" and s.issuer == "CHRU-TOURS"]
    assert len(studies) == 2
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    try:
        responses = pn_move(assoc, DEST, identifier("PATIENT", PatientID="T1001",
                                                    IssuerOfPatientID="CHRU-TOURS"), model="P")
    finally:
        assoc.release()
    assert final_of(responses).status == STATUS_SUCCESS, [hex(r.status or 0) for r in responses]
    assert_received_identical(hub, scp, [u for s in studies for u in s.sop_uids])


def test_move_unknown_destination_a801(gw, hub, scp, tmp_path):
    study = hub.study("tours_sr")
    res = movescu(gw.port, "NOBODY", ["QueryRetrieveLevel=STUDY",
                                      f"StudyInstanceUID={study.study_uid}"],
                  aet=CALLING, aec=FOLDER, workdir=tmp_path / "move")
    assert res.status == A801, res.output[-3000:]
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    try:
        responses = pn_move(assoc, "NOBODY", identifier("STUDY", StudyInstanceUID=study.study_uid))
    finally:
        assoc.release()
    assert final_of(responses).status == A801
    assert scp.files() == []


def test_move_bad_identifier_a900(gw, hub, scp):
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    try:
        no_level = pn_move(assoc, DEST, identifier(None, StudyInstanceUID=hub.study("tours_sr").study_uid))
        no_uid = pn_move(assoc, DEST, identifier("STUDY"), msg_id=2)
    finally:
        assoc.release()
    assert final_of(no_level).status == A900
    assert final_of(no_uid).status == A900
    assert scp.files() == []


def test_cancel_during_move(gateway_for, proxy, hub, scp):
    """The hub is slowed (each response 0.4 s late); C-CANCEL after the 2nd pending response:
    final Cancel (FE00) with fewer completed than the study holds, and storescp holds exactly
    the completed ones."""
    study = hub.study("tours_ct_big")
    gw = gateway_for(proxy.url + "/dicom-web", scp=scp)
    proxy.delay(0.4)
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    t0 = time.monotonic()
    try:
        responses = pn_move(assoc, DEST, identifier("STUDY", StudyInstanceUID=study.study_uid),
                            cancel_after_pending=2)
    finally:
        if assoc.is_established:
            assoc.release()
    final = final_of(responses)
    assert final is not None and final.status == STATUS_CANCEL, [hex(r.status or 0) for r in responses]
    assert final.completed is not None and final.completed < study.n_instances, final
    assert time.monotonic() - t0 < HANG
    received = scp.wait_files(final.completed, timeout=5)
    time.sleep(1.0)  # nothing more arrives after the cancel
    assert len(scp.files()) == final.completed, (len(received), final)
    for uid, path in scp.by_sop().items():
        assert not cm.dataset_differences(hub.original(uid), path)
    row = wait_rows(gw, 1)[0]
    assert (row["operation"], row["status"].upper()) == ("MOVE", "FE00"), row
    assert row["completed"] == final.completed, row


def test_hub_down_move_fails_a701(gateway_for, proxy, hub, scp):
    gw = gateway_for(proxy.url + "/dicom-web", scp=scp,
                     community_options={"query_timeout": "2s", "retrieve_timeout": "2s"})
    proxy.down()
    t0 = time.monotonic()
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG)
    try:
        responses = pn_move(assoc, DEST, identifier("STUDY", StudyInstanceUID=hub.study("tours_sr").study_uid))
    finally:
        assoc.release()
    assert final_of(responses).status == A701, [hex(r.status or 0) for r in responses]
    assert time.monotonic() - t0 < 2 + 8
    assert scp.files() == []


def test_slow_retrieve_fails_the_sub_operations_a702(gateway_for, proxy, hub, scp):
    """Listing works (QIDO-RS answered in 3 s, query_timeout 10 s) but each WADO-RS takes
    longer than retrieve_timeout (1 s): every sub-operation fails, A702, promptly."""
    study = hub.study("tours_sr")
    gw = gateway_for(proxy.url + "/dicom-web", scp=scp,
                     community_options={"query_timeout": "10s", "retrieve_timeout": "1s"})
    proxy.delay(3.0)
    t0 = time.monotonic()
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, timeout=HANG * 2)
    try:
        responses = pn_move(assoc, DEST, identifier("STUDY", StudyInstanceUID=study.study_uid))
    finally:
        if assoc.is_established:
            assoc.release()
    final = final_of(responses)
    assert final is not None and final.status == A702, [hex(r.status or 0) for r in responses]
    assert final.failed == study.n_instances and not final.completed, final
    assert time.monotonic() - t0 < HANG + 3 * study.n_instances
    assert scp.files() == []
    proxy.forward()
    res = movescu(gw.port, DEST, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                  aet=CALLING, aec=FOLDER)
    assert res.status == STATUS_SUCCESS, res.output[-3000:]
    assert_received_identical(hub, scp, study.sop_uids)


def test_move_destination_down_a702(gateway_for, hub, tmp_path):
    """The [[ae]] destination does not answer (nothing listens on its port): every
    sub-operation fails, A702, and the gateway goes on serving."""
    study = hub.study("tours_sr")
    gw = gateway_for(move_destinations={DEST: harness.free_port()})
    t0 = time.monotonic()
    res = movescu(gw.port, DEST, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                  aet=CALLING, aec=FOLDER, workdir=tmp_path / "move")
    assert res.status == A702, res.output[-3000:]
    assert res.final.failed == study.n_instances and not res.final.completed, res.final
    assert time.monotonic() - t0 < HANG
    assert find_ok(gw, study_query(PatientID="12345"))


def test_second_move_served_from_the_cache_without_the_hub(gateway_for, proxies, proxy, hub, scp):
    """A study retrieved once is in cache/ and served again with the hub unreachable; it is
    never listed in the site's spool nor uploaded (an archive destination that records every
    request receives none)."""
    archive = proxies(hub.orthanc.http_port)
    archive.http_503(3600)  # records requests, forwards none
    study = hub.study("tours_sr")
    gw = gateway_for(proxy.url + "/dicom-web", scp=scp,
                     destinations={"archive": {"url": archive.url + "/dicom-web"}},
                     upload={"stable_after": "1s", "retry_min": "200ms", "retry_max": "1s"})
    query = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"]
    first = movescu(gw.port, DEST, query, aet=CALLING, aec=FOLDER)
    assert first.status == STATUS_SUCCESS, first.output[-3000:]
    assert_received_identical(hub, scp, study.sop_uids)
    cache = gw.spool / "cache"
    assert len(gw.files_in(cache)) >= study.n_instances, f"cache/ holds {gw.files_in(cache)}"

    proxy.down()
    scp.clear()
    second = movescu(gw.port, DEST, query, aet=CALLING, aec=FOLDER)
    assert second.status == STATUS_SUCCESS, second.output[-3000:]
    assert second.final.completed == study.n_instances
    assert_received_identical(hub, scp, study.sop_uids)

    assert spool_list(gw.spool) == [], "a foreign study was indexed with the site's instances"
    time.sleep(3)  # stable_after 1 s: an upload would have started
    assert archive.posts() == [], f"uploaded to the archive: {archive.posts()[:3]}"


def test_cache_expires_after_cache_retention(gateway_for, proxy, hub, scp):
    """Past `cache_retention` the cached study's files are deleted and a move needs the hub
    again (unreachable here: A701)."""
    study = hub.study("tours_sr")
    gw = gateway_for(proxy.url + "/dicom-web", scp=scp, spool_extra={"cache_retention": "2s"})
    query = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"]
    first = movescu(gw.port, DEST, query, aet=CALLING, aec=FOLDER)
    assert first.status == STATUS_SUCCESS, first.output[-3000:]
    cache = gw.spool / "cache"
    assert len(gw.files_in(cache)) >= study.n_instances
    assert wait_until(lambda: not gw.files_in(cache), 10), f"cache/ still holds {gw.files_in(cache)}"
    proxy.down()
    second = movescu(gw.port, DEST, query, aet=CALLING, aec=FOLDER)
    assert second.status == A701, second.output[-3000:]


def test_move_reencodes_for_a_destination_that_takes_only_implicit_le(gateway_for, hub, tmp_path):
    """A destination accepting Implicit VR Little Endian only (storescp +xi) receives the
    Explicit VR LE instances re-encoded, every value unchanged; a compressed instance, which
    cannot be re-encoded without decompressing, fails alone (B000, its UID listed)."""
    scp = StoreSCP(tmp_path / "implicit", DEST, extra=["+xi"]).start()
    try:
        gw = gateway_for(scp=scp)
        study = hub.study("tours_ct_big")
        res = movescu(gw.port, DEST, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                      aet=CALLING, aec=FOLDER)
        assert res.status == STATUS_SUCCESS, res.output[-3000:]
        assert_received_identical(hub, scp, study.sop_uids)
        for path in scp.files():
            assert str(datagen.read(path).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2", path

        mixed = next(s for s in hub.studies if any(
            str(datagen.read(f).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.80" for f in s.files))
        compressed = {f for f in mixed.files
                      if str(datagen.read(f).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.80"}
        scp.clear()
        res = movescu(gw.port, DEST, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={mixed.study_uid}"],
                      aet=CALLING, aec=FOLDER)
        assert res.status == 0xB000, res.output[-3000:]
        assert res.final.failed == len(compressed), res.final
        assert res.final.completed == mixed.n_instances - len(compressed), res.final
    finally:
        scp.stop()


def test_storage_and_query_stay_on_their_own_ae_titles(gateway_for, hub):
    """The community AE title takes no C-STORE (its storage contexts are for C-GET, with the
    SCP role); the storage AE title offers no query/retrieve."""
    gw = gateway_for()
    any_file = hub.study("tours_sr").files[0]
    try:
        stored = harness.pn_store(gw.port, [any_file], aec=FOLDER)
    except AssertionError:  # no context at all: the association itself is refused
        stored = [None]
    assert STATUS_SUCCESS not in stored, stored
    assert spool_list(gw.spool) == []
    assoc = qr_associate(gw.port, harness.DEFAULT_AE, aet=CALLING, services=("find",), models=("S",))
    try:
        assert not assoc.is_established or not assoc.accepted_contexts, "Q/R accepted on the storage AE"
    finally:
        if assoc.is_established:
            assoc.release()
    assert harness.pn_store(gw.port, [any_file]) == [STATUS_SUCCESS]


# --------------------------------------------------------------------------
# C-GET


@pytest.mark.parametrize("key", ["ima_pdf", "tours_sr"])
def test_get_study_with_getscu(gw, hub, tmp_path, key):
    study = hub.study(key)
    res = getscu(gw.port, tmp_path / "got", ["QueryRetrieveLevel=STUDY",
                                              f"StudyInstanceUID={study.study_uid}"],
                 aet=CALLING, aec=FOLDER)
    assert res.status == STATUS_SUCCESS, res.output[-4000:]
    assert len(res.stores) == study.n_instances
    got = {str(datagen.file_meta(f).MediaStorageSOPInstanceUID): f for f in res.files}
    assert set(got) == set(study.sop_uids)
    for uid, path in got.items():
        assert not cm.dataset_differences(hub.original(uid), path), uid


def pn_get_study(gw, tmp_path, study_uid: str, sop_classes: list[str]):
    """C-GET with pynetdicom, offering `sop_classes` with the SCP role; what arrives is written
    as Part-10 files. Returns (responses, {sop uid: file})."""
    outdir = tmp_path / "pn-got"
    outdir.mkdir(exist_ok=True)
    got: dict[str, Path] = {}

    def on_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        path = outdir / f"{uid}.dcm"
        path.write_bytes(event.encoded_dataset())
        got[uid] = path
        return 0x0000

    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, services=("get",), storage_scp=sop_classes,
                         timeout=HANG, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    try:
        responses = pn_get(assoc, identifier("STUDY", StudyInstanceUID=study_uid))
    finally:
        if assoc.is_established:
            assoc.release()
    return responses, got


def test_cancel_during_get_keeps_the_association(gateway_for, proxy, hub, tmp_path):
    """C-CANCEL in the middle of a C-GET (the hub slowed so that the cancel lands while
    instances are being sent on the requestor's own association): the instance being sent is
    finished, the final response is Cancel (FE00) with what was completed, and the
    association is still there to release — a cancel never aborts it."""
    study = hub.study("tours_ct_big")
    gw = gateway_for(proxy.url + "/dicom-web")
    proxy.delay(0.4)
    assoc = qr_associate(gw.port, FOLDER, aet=CALLING, services=("get",), storage_scp=[cm.CT_IMAGE],
                         timeout=HANG, evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])
    assert assoc.is_established
    try:
        responses = pn_get(assoc, identifier("STUDY", StudyInstanceUID=study.study_uid), cancel_after_pending=2)
        assert assoc.is_established, "the cancel aborted the association"
        # The association still serves requests after the cancel.
        first = study.series[0]
        again = pn_get(assoc, identifier("IMAGE", StudyInstanceUID=study.study_uid,
                                         SeriesInstanceUID=first.series_uid, SOPInstanceUID=first.sop_uids[0]),
                       msg_id=2)
    finally:
        if assoc.is_established:
            assoc.release()
    final = final_of(responses)
    assert final is not None and final.status == STATUS_CANCEL, [hex(r.status or 0) for r in responses]
    assert final.completed is not None and 0 < final.completed < study.n_instances, final
    assert final_of(again).status == STATUS_SUCCESS, [hex(r.status or 0) for r in again]
    assert not assoc.is_aborted


def test_get_with_role_selection_pynetdicom(gw, hub, tmp_path):
    study = hub.study("tours_ct_big")
    responses, got = pn_get_study(gw, tmp_path, study.study_uid, [cm.CT_IMAGE])
    final = final_of(responses)
    assert final.status == STATUS_SUCCESS, [hex(r.status or 0) for r in responses]
    assert final.completed == study.n_instances
    assert_counts(pending_of(responses), study.n_instances)
    assert set(got) == set(study.sop_uids)
    for uid, path in got.items():
        assert not cm.dataset_differences(hub.original(uid), path), uid


def test_get_sop_class_not_offered_fails_that_sub_operation_b000(gw, hub, tmp_path):
    """Only CT offered with the SCP role: the SR of the study cannot be sent on this
    association: B000, its UID in Failed SOP Instance UID List, the CT arrive."""
    study = hub.study("tours_sr")
    responses, got = pn_get_study(gw, tmp_path, study.study_uid, [cm.CT_IMAGE])
    final = final_of(responses)
    sr_uid = study.series_of("SR").sop_uids[0]
    assert final.status == B000, [hex(r.status or 0) for r in responses]
    assert final.failed == 1 and final.completed == len(study.series_of("CT").files), final
    assert final.identifier is not None and "FailedSOPInstanceUIDList" in final.identifier
    failed = final.identifier.FailedSOPInstanceUIDList
    failed = [failed] if isinstance(failed, str) else list(failed)
    assert failed == [sr_uid]
    assert set(got) == set(study.series_of("CT").sop_uids)


def test_get_nothing_offered_a702(gw, hub, tmp_path):
    """No storage class offered at all that the study needs: every sub-operation fails: A702."""
    study = hub.study("ima_pdf")
    responses, got = pn_get_study(gw, tmp_path, study.study_uid, [cm.CT_IMAGE])
    assert final_of(responses).status == A702, [hex(r.status or 0) for r in responses]
    assert got == {}


# --------------------------------------------------------------------------
# traceability


def access_rows(gw) -> list[dict]:
    db = gw.spool / "spool.sqlite"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM community_access ORDER BY id")]
    finally:
        conn.close()


def wait_rows(gw, count: int, timeout: float = 10) -> list[dict]:
    """The community_access rows once there are `count` of them (asserts it happens)."""
    assert wait_until(lambda: len(access_rows(gw)) >= count, timeout), \
        f"community_access: {access_rows(gw)} (expected {count} rows)"
    return access_rows(gw)


def test_every_find_move_and_get_is_recorded(gw, hub, scp, tmp_path):
    study = hub.study("tours_sr")
    results = find_ok(gw, study_query(PatientID="12345"), aet="TRACE_QR")
    move = movescu(gw.port, DEST, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study.study_uid}"],
                   aet="TRACE_QR", aec=FOLDER)
    assert move.status == STATUS_SUCCESS, move.output[-2000:]
    refused = movescu(gw.port, "NOBODY", ["QueryRetrieveLevel=STUDY",
                                          f"StudyInstanceUID={study.study_uid}"],
                      aet="TRACE_QR", aec=FOLDER)
    assert refused.status == A801
    got = getscu(gw.port, tmp_path / "got", ["QueryRetrieveLevel=STUDY",
                                              f"StudyInstanceUID={study.study_uid}"],
                 aet="TRACE_QR", aec=FOLDER)
    assert got.status == STATUS_SUCCESS, got.output[-2000:]

    assert wait_until(lambda: len(access_rows(gw)) >= 4, 10), access_rows(gw)
    rows = access_rows(gw)
    assert len(rows) == 4, json.dumps(rows, indent=1, default=str)
    find_row, move_row, refused_row, get_row = rows
    for row in rows:
        assert row["calling_ae"].strip() == "TRACE_QR", row
        assert row["called_ae"].strip() == FOLDER, row
        assert row["level"] == "STUDY", row
        assert row["at"], row
        assert row["duration_ms"] is not None and row["duration_ms"] >= 0, row
    assert find_row["operation"] == "FIND" and find_row["status"].upper() == "0000", find_row
    assert find_row["results"] == len(results), find_row
    assert "12345" in (find_row["query"] or ""), find_row
    assert move_row["operation"] == "MOVE" and move_row["status"].upper() == "0000", move_row
    assert move_row["move_destination"] == DEST, move_row
    assert study.study_uid in (move_row["study_uids"] or ""), move_row
    assert move_row["completed"] == study.n_instances, move_row
    assert (move_row["failed"] or 0) == 0 and (move_row["warnings"] or 0) == 0, move_row
    assert refused_row["operation"] == "MOVE" and refused_row["status"].upper() == "A801", refused_row
    assert refused_row["move_destination"] == "NOBODY", refused_row
    assert not refused_row["completed"], refused_row
    assert get_row["operation"] == "GET" and get_row["status"].upper() == "0000", get_row
    assert get_row["completed"] == study.n_instances, get_row
    log = gw.log_text()
    assert "community query" in log and "community retrieve" in log, gw.log_tail(3000)

    # The same trace for the site's IT, newest first, while the daemon runs.
    listing = subprocess.run([str(harness.passerellectl_path()), "spool", "access", "--json",
                              "--spool", str(gw.spool)], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    shown = json.loads(listing.stdout)
    assert [r["operation"] for r in shown] == ["GET", "MOVE", "MOVE", "FIND"], shown
    assert [r["status"] for r in shown] == [r["status"].upper() for r in reversed(rows)], shown
    assert shown[2]["move_destination"] == DEST and shown[2]["completed"] == study.n_instances, shown[2]
    table = subprocess.run([str(harness.passerellectl_path()), "spool", "access", "--limit", "1",
                            "--spool", str(gw.spool)], capture_output=True, text=True, timeout=30)
    assert table.returncode == 0 and "GET STUDY" in table.stdout and "TRACE_QR" in table.stdout, table.stdout


def test_status_and_metrics_show_each_search_folder(gateway_for, proxy, hub):
    """`passerellectl status` lists the search folder with its requests, its health (failing
    after the hub stopped answering, with the error) and its cache; the metrics count them."""
    gw = gateway_for(proxy.url + "/dicom-web", community_options={"query_timeout": "2s"})

    def status() -> dict:
        out = subprocess.run([str(harness.passerellectl_path()), "status", "--json",
                              "--socket", str(gw.spool / "status.sock")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first = status()
    assert [(c["ae_title"], c["health"]) for c in first["communities"]] == [(FOLDER, "idle")], first
    assert FOLDER in [entry["ae_title"] for entry in first["listening"]], first["listening"]
    find_ok(gw, study_query(PatientID="12345"))
    ok = status()["communities"][0]
    assert ok["health"] == "ok" and ok["requests"] == {"FIND": 1} and ok["last_success_at"], ok
    proxy.down()
    assert is_failure_c(final_of(find(gw, study_query(PatientID="12345"))).status)
    failing = status()["communities"][0]
    assert failing["health"] == "failing" and failing["requests"] == {"FIND": 2}, failing
    assert "C001" in failing["last_error"]["message"], failing
    text = subprocess.run([str(harness.passerellectl_path()), "status", "--socket", str(gw.spool / "status.sock")],
                          capture_output=True, text=True, timeout=30).stdout
    assert f"community {FOLDER}: failing" in text, text
    metrics = subprocess.run([str(harness.passerellectl_path()), "metrics", "--socket", str(gw.spool / "status.sock")],
                             capture_output=True, text=True, timeout=30).stdout
    assert f'passerelle_community_up{{community="{FOLDER}"}} 0' in metrics, metrics[-2000:]
    assert "passerelle_community_requests_total" in metrics, metrics[-2000:]


def test_failed_find_is_recorded_with_its_status(gateway_for, proxy):
    gw = gateway_for(proxy.url + "/dicom-web", community_options={"query_timeout": "2s"})
    proxy.down()
    final = final_of(find(gw, study_query(PatientID="12345")))
    assert is_failure_c(final.status)
    assert wait_until(lambda: len(access_rows(gw)) >= 1, 10)
    row = access_rows(gw)[-1]
    assert row["operation"] == "FIND" and row["status"].upper() == f"{final.status:04X}", row
    assert not row["results"], row
