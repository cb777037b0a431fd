#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/TARGET/ (committed; run again after changing a
harness's input layout). Seeds are real encodings made with pydicom and pynetdicom, and
messages as the project's tests use them; each is prefixed with the selector bytes its
harness reads first (see the comment at the top of fuzz/Sources/TARGET.swift)."""

import io
import json
import re
import sys
import textwrap
import zlib
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite, write_dataset
from pydicom.filebase import DicomBytesIO
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
CORPUS = ROOT / "corpus"
TS = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]  # harness indices 0, 1, 2
DEFLATED = "1.2.840.10008.1.2.1.99"


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(bytes(data))


def encode(ds, ts):
    fp = DicomBytesIO()
    fp.is_little_endian = ts != ExplicitVRBigEndian
    fp.is_implicit_VR = ts == ImplicitVRLittleEndian
    write_dataset(fp, ds)
    return fp.getvalue()


def deflate(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


# ---------------------------------------------------------------- data sets

def instance(charset=None, name="DUPONT^Jean", pixels=True, extra=None):
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.10001"
    ds.StudyDate = "20240312"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = "CT"
    ds.StudyDescription = "THORAX"
    ds.PatientName = name
    ds.PatientID = "123456"
    ds.IssuerOfPatientID = "HOSP"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    other = Dataset()
    other.PatientID = "1700101751234"
    other.IssuerOfPatientID = "INS-NIR"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "7"
    ds.add_new(0x00091010, "LO", "PRIVATE VALUE")
    if extra:
        extra(ds)
    if pixels:
        ds.Rows, ds.Columns = 4, 4
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = bytes(range(32))
    return ds


def nested(ds):
    inner = Dataset()
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inner.ReferencedSOPInstanceUID = "1.2.3.4"
    outer = Dataset()
    outer.ReferencedImageSequence = Sequence([inner, inner])
    ds.ReferencedStudySequence = Sequence([outer])
    ds.add_new(0x00291010, "UN", b"\x01\x02\x03\x04")


def instances():
    return {
        "ct": instance(),
        "latin1": instance("ISO_IR 100", "Müller^Renée"),
        "utf8": instance("ISO_IR 192", "Ηλίας^Ζωή"),
        "japanese": instance("\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        "nested": instance(extra=nested),
        "header-only": instance(pixels=False),
    }


def dataset_seeds():
    for key, ds in instances().items():
        for index, ts in enumerate(TS):
            data = encode(ds, ts)
            put("dataset", f"walk-{key}-{index}", [index] + list(data))
            if key in ("ct", "nested"):
                put("dataset", f"slices-{key}-{index}", [4 | index, 3, 5, 17, 1] + list(data))
                put("dataset", f"parse-{key}-{index}", [8 | index] + list(data))
                put("dataset", f"locate-{key}-{index}", [20 | index, 0x00, 0x10, 0x00, 0x20] + list(data))
                put("dataset", f"length-{key}-{index}", [24 | index, 2] + list(data))
                put("dataset", f"header-{key}-{index}", [28 | index] + list(data))
        explicit = encode(ds, ExplicitVRLittleEndian)
        put("dataset", f"deflated-{key}", [3] + list(deflate(explicit)))
        put("dataset", f"deflate-wrap-{key}", [12 | 3] + list(explicit))
    # Part-10 files, the deflated one included (meta explicit LE, data set deflated).
    for key, ts in [("implicit", ImplicitVRLittleEndian), ("explicit", ExplicitVRLittleEndian),
                    ("big", ExplicitVRBigEndian), ("deflated", DEFLATED)]:
        ds = instance(extra=nested if key == "deflated" else None)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ts
        ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1234.1"
        buffer = io.BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        put("dataset", f"part10-{key}", [16] + list(buffer.getvalue()))


# ---------------------------------------------------------------- identifiers

def identifiers():
    study = Dataset()
    study.QueryRetrieveLevel = "STUDY"
    study.PatientName = "DUR*"
    study.PatientID = ""
    study.StudyDate = "20200101-20241231"
    study.StudyInstanceUID = ""
    study.ModalitiesInStudy = "CT\\MR"
    study.AccessionNumber = ""
    study.NumberOfStudyRelatedInstances = ""
    patient = Dataset()
    patient.SpecificCharacterSet = "ISO_IR 100"
    patient.QueryRetrieveLevel = "PATIENT"
    patient.PatientName = "Müll?r*"
    patient.PatientID = "12*"
    patient.PatientBirthDate = ""
    other = Dataset()
    other.PatientID = "1700101751234"
    other.IssuerOfPatientID = "INS-NIR"
    patient.OtherPatientIDsSequence = Sequence([other])
    series = Dataset()
    series.QueryRetrieveLevel = "SERIES"
    series.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    series.Modality = "CT"
    series.SeriesNumber = ""
    series.SeriesInstanceUID = ""
    japanese = Dataset()
    japanese.SpecificCharacterSet = "\\ISO 2022 IR 87"
    japanese.QueryRetrieveLevel = "STUDY"
    japanese.PatientName = "山田^太郎"
    japanese.StudyInstanceUID = ""
    utf8 = Dataset()
    utf8.SpecificCharacterSet = "ISO_IR 192"
    utf8.QueryRetrieveLevel = "IMAGE"
    utf8.StudyInstanceUID = "1.2.3"
    utf8.SeriesInstanceUID = "1.2.3.4"
    utf8.SOPInstanceUID = ""
    utf8.PatientName = "Ζωή*"
    utf8.add_new(0x00280010, "US", 512)
    return {"study": study, "patient": patient, "series": series, "japanese": japanese, "utf8": utf8}


def identifier_seeds():
    for key, ds in identifiers().items():
        for index, ts in enumerate(TS):
            put("identifier", f"{key}-{index}", [index] + list(encode(ds, ts)))
    texts = [
        (2, 0, "Müller^Renée".encode("latin-1")),
        (6, 0, "Ηλίας^Ζωή".encode()),
        (9, 0, b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"),
        (11, 0, b"\x1b$)C\xc8\xab\xb1\xe6\xb5\xbf^\xb1\xe6\xb5\xbf"),
        (7, 3, "中文报告".encode("gb18030")),
        (5, 1, "ﾔﾏﾀﾞ^ﾀﾛｳ".encode("shift_jis")),
        (4, 4, "Иванов".encode("iso8859_5")),
    ]
    for n, (charset, vr, data) in enumerate(texts):
        put("identifier", f"charset-{n}", [0x80, charset, vr] + list(data))


# ---------------------------------------------------------------- DICOMweb

STUDY = "1.2.826.0.1.3680043.8.498.1"
SOP = "1.2.826.0.1.3680043.8.498.10001"


def stow_seeds():
    referenced = {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                  "00081155": {"vr": "UI", "Value": [SOP]},
                  "00081190": {"vr": "UR", "Value": [f"http://127.0.0.1:8042/dicom-web/studies/{STUDY}/series/1/instances/{SOP}"]}}
    warned = dict(referenced, **{"00081196": {"vr": "US", "Value": [45056]}})
    failed = {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
              "00081155": {"vr": "UI", "Value": ["1.2.3.4"]}, "00081197": {"vr": "US", "Value": [272]}}
    bodies = {
        "ok": {"00081190": {"vr": "UR", "Value": [f"http://127.0.0.1:8042/dicom-web/studies/{STUDY}"]},
               "00081199": {"vr": "SQ", "Value": [referenced]}},
        "warning": {"00081199": {"vr": "SQ", "Value": [warned]}},
        "conflict": {"00081198": {"vr": "SQ", "Value": [failed]}, "00081199": {"vr": "SQ", "Value": [referenced]}},
        "empty-sequences": {"00081198": {"vr": "SQ"}, "00081199": {"vr": "SQ", "Value": []}},
    }
    statuses = {"ok": 0, "warning": 1, "conflict": 2, "empty-sequences": 3}
    for name, body in bodies.items():
        put("stow-response", f"json-{name}", [statuses[name] << 1] + list(json.dumps(body, indent=1).encode()))
        put("stow-response", f"json-array-{name}", [statuses[name] << 1] + list(json.dumps([body]).encode()))

    def xml_attribute(tag, vr, inner):
        return f'<DicomAttribute tag="{tag}" vr="{vr}">{inner}</DicomAttribute>'

    def xml_item(attributes):
        out = ""
        for tag, attribute in attributes.items():
            values = "".join(f'<Value number="{n + 1}">{v}</Value>' for n, v in enumerate(attribute.get("Value", [])))
            out += xml_attribute(tag, attribute["vr"], values)
        return out

    for name, body in bodies.items():
        inner = ""
        for tag, attribute in body.items():
            if attribute["vr"] == "SQ":
                items = "".join(f'<Item number="{n + 1}">{xml_item(item)}</Item>' for n, item in enumerate(attribute.get("Value", [])))
                inner += xml_attribute(tag, "SQ", items)
            else:
                inner += xml_item({tag: attribute})
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<!-- Orthanc -->\n'
               f'<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">{inner}</NativeDicomModel>\n')
        put("stow-response", f"xml-{name}", [(statuses[name] << 1) | 1] + list(xml.encode()))
    put("stow-response", "xml-cdata-entities",
        [1] + list(b'<?xml version="1.0"?><NativeDicomModel><DicomAttribute tag="00081199" vr="SQ"><Item number="1">'
                   b'<DicomAttribute tag="00081155" vr="UI"><Value number="1"><![CDATA[1.2.3]]>&#x34;&amp;</Value>'
                   b'</DicomAttribute></Item></DicomAttribute></NativeDicomModel>'))


def qido_seeds():
    def study(n, name, ideographic=None):
        pn = {"Alphabetic": name}
        if ideographic:
            pn["Ideographic"] = ideographic
        return {"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
                "00080020": {"vr": "DA", "Value": ["20240312"]}, "00080030": {"vr": "TM", "Value": ["101500.123"]},
                "00080050": {"vr": "SH", "Value": [f"ACC{n:04}"]}, "00080061": {"vr": "CS", "Value": ["CT", "SR"]},
                "00080090": {"vr": "PN"}, "00100010": {"vr": "PN", "Value": [pn]},
                "00100020": {"vr": "LO", "Value": [f"12{n:04}"]}, "00100021": {"vr": "LO", "Value": ["HOSP"]},
                "00100030": {"vr": "DA", "Value": ["19700101"]}, "00100040": {"vr": "CS", "Value": ["M"]},
                "00101002": {"vr": "SQ", "Value": [{"00100020": {"vr": "LO", "Value": ["1700101751234"]},
                                                     "00100021": {"vr": "LO", "Value": ["INS-NIR"]}}]},
                "0020000D": {"vr": "UI", "Value": [f"{STUDY}.{n}"]}, "00201206": {"vr": "IS", "Value": [2]},
                "00201208": {"vr": "IS", "Value": [n * 10]}}
    put("qido", "studies", [0] + list(json.dumps([study(1, "DURAND^Paul"), study(2, "DUPONT^Jean")]).encode()))
    put("qido", "studies-ideographic", [0x10] + list(json.dumps([study(3, "Yamada^Tarou", "山田^太郎")]).encode()))
    put("qido", "patients", [1] + list(json.dumps([study(4, "MARTIN^Luc")], indent=2).encode()))
    series = {"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
              "00080060": {"vr": "CS", "Value": ["CT"]}, "00200011": {"vr": "IS", "Value": [1]},
              "00201209": {"vr": "IS", "Value": [3]}}
    put("qido", "series", [0x22] + list(json.dumps([series]).encode()))
    instances = [{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
                  "00080018": {"vr": "UI", "Value": [f"1.2.3.4.{n}"]},
                  "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                  "00280010": {"vr": "US", "Value": [512]}, "7FE00010": {"vr": "OW", "BulkDataURI": "http://x/bulk"},
                  "00091010": {"vr": "OB", "InlineBinary": "AQID"}, "00181050": {"vr": "DS", "Value": [0.625]}}
                 for n in range(3)]
    put("qido", "instances", [2] + list(json.dumps(instances).encode()))
    put("qido", "single-object", [0] + list(json.dumps(study(5, "ÉLODIE^Zoë")).encode()))


def multipart_seeds():
    ct = encode(instance(), ExplicitVRLittleEndian)
    boundaries = ["DICOMwebBoundary", "a b:c", "x", "---=_Part_0"]

    def body(boundary, parts, preamble=b"", epilogue=b""):
        out = preamble
        for headers, payload in parts:
            out += b"\r\n--" + boundary.encode() if out else b"--" + boundary.encode()
            out += b"\r\n" + b"".join(h.encode() + b"\r\n" for h in headers) + b"\r\n" + payload
        return out + b"\r\n--" + boundary.encode() + b"--\r\n" + epilogue

    dicom = ["Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
             f"Content-Location: /dicom-web/studies/{STUDY}/series/1/instances/{SOP}"]
    put("multipart", "one-instance", [0, 0] + list(body(boundaries[0], [(dicom, ct)])))
    put("multipart", "two-instances-split", [0, 3, 7, 64, 1] + list(body(boundaries[0], [(dicom, ct), (dicom, ct[:200])])))
    put("multipart", "quoted-boundary", [1, 0] + list(body(boundaries[1], [(dicom, ct[:300])], preamble=b"preamble\r\n")))
    put("multipart", "short-boundary", [2, 1, 2] + list(body(boundaries[2], [([], b"--x--x"), (["X: y"], b"\r\n")])))
    put("multipart", "padding-epilogue", [3, 0] + list(body(boundaries[3], [(["Content-Type: application/octet-stream"], bytes(range(256)))],
                                                            epilogue=b"trailing")))
    put("multipart", "transport-padding", [0, 0] + list(b"--DICOMwebBoundary \t\r\nContent-Type: application/dicom\r\n\r\n"
                                                        + ct[:64] + b"\r\n--DICOMwebBoundary--"))


# ---------------------------------------------------------------- configuration, HL7, audit

def config_seeds():
    put("config", "etc-passerelle", (REPO / "etc/passerelle.toml").read_bytes())
    text = (REPO / "Tests/GatewayTests/ConfigurationLoaderTests.swift").read_text()
    documents = re.findall(r'"""\n(.*?)"""', text, re.S)
    seen = set()
    for n, document in enumerate(documents):
        document = textwrap.dedent(document)
        if "\\(" in document or document in seen:  # Swift interpolation: not TOML as written
            continue
        seen.add(document)
        put("config", f"loader-test-{n:02}", document.encode())


def hl7_seeds():
    text = (REPO / "Tests/HL7Tests/HL7Fixtures.swift").read_text()
    messages = []
    for block in re.findall(r"\[\s*\n((?:\s*#?\".*\"#?,?\n)+)\s*\]", text):
        segments = re.findall(r'#"(.*?)"#|"((?:[^"\\]|\\.)*)"', block)
        segments = [a or b for a, b in segments if "\\(" not in (a or b)]
        if segments and segments[0].startswith("MSH"):
            messages.append(("\r".join(segments) + "\r").encode())
    messages.append(b"MSH|^~\\&|RIS|HOSP|PASSERELLE|RAD|20240312101500||ADT^A40^ADT_A39|ADT7|P|2.5|||AL|NE||8859/1\r"
                    b"EVN|A40|20240312101500\rPID|1||222^^^HOSP^MR||M\xdcLLER^Ren\xe9e\rMRG|111^^^HOSP^MR\r")
    messages.append(b"MSH|^~\\&|RIS|HOSP|PASSERELLE|RAD|20240312101500||ORU^R01|ORU9|P|2.3.1\n"
                    b"PID|1||555^^^HOSP^MR||DOE^JOHN\nOBR|1||ACC9|XR^CHEST|||20240312\nOBX|1|FT|REP||line\\X0D\\two||||||F\n")
    for n, message in enumerate(messages):
        put("hl7", f"message-{n}", [0] + list(message))
        put("hl7", f"mllp-{n}", [3, 1, 9, 40] + list(b"\x0b" + message + b"\x1c\r"))
    put("hl7", "mllp-two-frames", [0] + list(b"\x0b" + messages[0] + b"\x1c\r\n\x0b" + messages[-1] + b"\x1c\r"))
    put("hl7", "mllp-restarted", [1, 20] + list(b"\x0bMSH|^~\\&|X\x0b" + messages[0] + b"\x1c"))


def audit_seeds():
    """Mirrors the harness's FuzzInput reads (fuzz/Sources/audit.swift)."""
    def string(text):
        data = text.encode()[:64]
        return [len(data)] + list(data)

    def optional(text):
        return [0] if text is None else [1] + string(text)

    cases = [
        (1, 0, "Association accepted", ("MODALITY", "10.1.2.3:51234", None), "PASSERELLE",
         [("123456", "HOSP")], [STUDY], {"count": "12"}),
        (6, 0, None, ("CT01", "[::1]:104", "dr.house"), "ARCHIVE", [], [STUDY, STUDY + ".2"],
         {"keys": "PatientName=DUR*", "level": "STUDY", "sop_class_uid": "1.2.840.10008.5.1.4.1.2.2.1"}),
        (10, 8, "refused: <opposition> & \"quote\"\ttab", (None, "local", "admin"), None,
         [("1700101751234", "INS-NIR")], [], {"reason": "patient's wish ]\\"}),
        (0, 0, None, (None, None, None), None, [], [], {}),
        (16, 4, "Ζωή \x01 control", ("AE]", "host:notaport", None), "dest\"]", [("é", "ÿ")], ["1.2"], {"x": "\u2028"}),
    ]
    for n, (action, outcome, description, actor, destination, patients, studies, details) in enumerate(cases):
        data = [action, outcome, 0x19, 0x0A, 0x3C, 0x2F, 0x40]
        data += optional(description) + optional(actor[0]) + optional(actor[1]) + optional(actor[2]) + optional(destination)
        data += [len(patients)] + sum((string(i) + string(s) for i, s in patients), [])
        data += [len(studies)] + sum((string(s) for s in studies), [])
        keys = ["count", "level", "keys", "sop_class_uid", "reason", "destination", "x"]
        data += [len(details)] + sum(([keys.index(k)] + string(v) for k, v in details.items()), [])
        data += string("passerelle.example") + [1] + string("HOSP-SITE") + string("PASSERELLE")
        data += string("gw1.hosp.example" if n % 2 else "10.0.0.5") + string(str(1000 + n))
        data += string("0" * 64)
        put("audit", f"event-{n}", data)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    import corpus_network
    corpus_network.use(put=put, encode=encode, instance=instance, identifiers=identifiers)
    network_seeds = corpus_network.network_seeds
    dataset_seeds()
    identifier_seeds()
    network_seeds()
    stow_seeds()
    qido_seeds()
    multipart_seeds()
    config_seeds()
    hl7_seeds()
    audit_seeds()
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        print(f"{folder.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")
