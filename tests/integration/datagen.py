"""Synthetic DICOM instances for the Passerelle integration tests and bench.

Everything here is deterministic given its arguments (UIDs are derived from a
caller-supplied seed or generated fresh with pydicom's UID generator), so the
tests can compare what they sent with what the gateway stored.

Transcoding to the compressed transfer syntaxes that DCMTK can produce is done
with the DCMTK command-line tools (always called by absolute path, see
DESIGN.md "Test peers on this machine"). Transfer syntaxes DCMTK cannot
encode (JPEG 2000, MPEG, HEVC, HTJ2K) get a pydicom-encapsulated *synthetic*
fragment: the gateway never decodes pixel data, it only has to store the
bytes as received.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    CTImageStorage,
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    VideoPhotographicImageStorage,
    generate_uid,
)

DCMTK_BIN = Path(os.environ.get("DCMTK_BIN", "/usr/bin"))
IMPLEMENTATION_UID = UID("1.2.826.0.1.3680043.10.1234.1")  # test-only root

# Transfer syntax UIDs (named here so tests read well).
TS_IMPLICIT_LE = "1.2.840.10008.1.2"
TS_EXPLICIT_LE = "1.2.840.10008.1.2.1"
TS_DEFLATED = "1.2.840.10008.1.2.1.99"
TS_EXPLICIT_BE = "1.2.840.10008.1.2.2"
TS_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
TS_JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
TS_JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
TS_JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
TS_JPEGLS_LOSSLESS = "1.2.840.10008.1.2.4.80"
TS_JPEGLS_NEAR = "1.2.840.10008.1.2.4.81"
TS_J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
TS_J2K = "1.2.840.10008.1.2.4.91"
TS_MPEG2_MPML = "1.2.840.10008.1.2.4.100"
TS_MPEG4_HP41 = "1.2.840.10008.1.2.4.102"
TS_HEVC_MAIN = "1.2.840.10008.1.2.4.107"
TS_HEVC_MAIN10 = "1.2.840.10008.1.2.4.108"
TS_HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
TS_HTJ2K = "1.2.840.10008.1.2.4.203"
TS_RLE = "1.2.840.10008.1.2.5"

# ts uid -> DCMTK tool invocation turning an Explicit-LE file into that TS.
# "base" names which source image to use: 16-bit CT (12 bits stored) or an
# 8-bit image (JPEG baseline only supports 8 bits/sample).
DCMTK_TRANSCODES: dict[str, tuple[str, list[str], str]] = {
    TS_IMPLICIT_LE: ("dcmconv", ["+ti"], "ct16"),
    TS_EXPLICIT_LE: ("dcmconv", ["+te"], "ct16"),
    TS_EXPLICIT_BE: ("dcmconv", ["+tb"], "ct16"),
    TS_DEFLATED: ("dcmconv", ["+td"], "ct16"),
    TS_JPEG_BASELINE: ("dcmcjpeg", ["+eb"], "ct8"),
    TS_JPEG_EXTENDED: ("dcmcjpeg", ["+ee"], "ct16"),
    TS_JPEG_LOSSLESS: ("dcmcjpeg", ["+el"], "ct16"),
    TS_JPEG_LOSSLESS_SV1: ("dcmcjpeg", ["+e1"], "ct16"),
    TS_JPEGLS_LOSSLESS: ("dcmcjpls", ["+el"], "ct16"),
    TS_JPEGLS_NEAR: ("dcmcjpls", ["+en"], "ct16"),
    TS_RLE: ("dcmcrle", [], "ct16"),
}

# ts uid -> (fake first bytes of a fragment, is it a video TS).
SYNTHETIC_ENCAPSULATED: dict[str, tuple[bytes, bool]] = {
    TS_J2K_LOSSLESS: (b"\xff\x4f\xff\x51", False),  # J2K SOC + SIZ markers
    TS_J2K: (b"\xff\x4f\xff\x51", False),
    TS_HTJ2K_LOSSLESS: (b"\xff\x4f\xff\x51\xff\x50", False),  # + CAP marker
    TS_HTJ2K: (b"\xff\x4f\xff\x51\xff\x50", False),
    TS_MPEG2_MPML: (b"\x00\x00\x01\xb3", True),  # MPEG-2 sequence header
    TS_MPEG4_HP41: (b"\x00\x00\x00\x01\x67", True),  # H.264 SPS NAL
    TS_HEVC_MAIN: (b"\x00\x00\x00\x01\x40\x01", True),  # H.265 VPS NAL
    TS_HEVC_MAIN10: (b"\x00\x00\x00\x01\x40\x01", True),
}

ALL_TRANSFER_SYNTAXES = list(DCMTK_TRANSCODES) + list(SYNTHETIC_ENCAPSULATED)


@dataclass(frozen=True)
class Patient:
    patient_id: str = "PAT001"
    name: str = "Test^Patient"
    charset: str | None = None  # e.g. "ISO_IR 100", "ISO_IR 192"
    issuer: str | None = None


@dataclass(frozen=True)
class Study:
    study_uid: str
    series_uid: str
    patient: Patient = Patient()

    @classmethod
    def new(cls, patient: Patient = Patient()) -> "Study":
        return cls(generate_uid(), generate_uid(), patient)


# --------------------------------------------------------------------------
# building blocks


def _file_meta(sop_class: str, sop_instance: str, ts: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    return meta


def _base_dataset(sop_class: str, modality: str, study: Study,
                  instance_number: int, sop_instance: str | None) -> Dataset:
    sop_instance = sop_instance or generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_instance, ExplicitVRLittleEndian)
    p = study.patient
    if p.charset:
        ds.SpecificCharacterSet = p.charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = modality
    ds.Manufacturer = "Passerelle tests"
    ds.PatientName = p.name
    ds.PatientID = p.patient_id
    if p.issuer:
        ds.IssuerOfPatientID = p.issuer
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = study.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    return ds


def _set_mono_pixels(ds: Dataset, pixels: np.ndarray, bits_stored: int) -> None:
    rows, cols = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()


def _synthetic_image(rows: int, cols: int, seed: int, bits: int,
                     dtype=np.uint16) -> np.ndarray:
    """A gradient + disc + a little noise: compressible but not trivial,
    and different for every seed (so every instance has distinct bytes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    maxv = (1 << bits) - 1
    img = (x * (maxv // 2) // max(cols - 1, 1)) + (y * (maxv // 4) // max(rows - 1, 1))
    cy, cx = rows // 2 + seed % 17, cols // 2 - seed % 13
    disc = (y - cy) ** 2 + (x - cx) ** 2 < (min(rows, cols) // 4) ** 2
    img = img + disc * (maxv // 5)
    img = img + rng.integers(0, 16, size=(rows, cols))
    return np.clip(img, 0, maxv).astype(dtype)


def save(ds: Dataset, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------
# public generators


def make_ct(path: Path, study: Study, instance_number: int = 1, *,
            rows: int = 512, cols: int = 512, sop_instance: str | None = None,
            seed: int | None = None, bits8: bool = False) -> Path:
    """CT, 16 bits allocated / 12 stored (or 8/8 with bits8), Explicit VR LE."""
    ds = _base_dataset(CTImageStorage, "CT", study, instance_number, sop_instance)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SliceThickness = "1.0"
    ds.ImagePositionPatient = [0, 0, float(instance_number)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    seed = instance_number if seed is None else seed
    if bits8:
        _set_mono_pixels(ds, _synthetic_image(rows, cols, seed, 8, np.uint8), 8)
    else:
        _set_mono_pixels(ds, _synthetic_image(rows, cols, seed, 12), 12)
    return save(ds, path)


def make_mr(path: Path, study: Study, instance_number: int = 1, *,
            rows: int = 256, cols: int = 256, sop_instance: str | None = None) -> Path:
    ds = _base_dataset(MRImageStorage, "MR", study, instance_number, sop_instance)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    _set_mono_pixels(ds, _synthetic_image(rows, cols, instance_number, 12), 12)
    return save(ds, path)


def make_cr(path: Path, study: Study, instance_number: int = 1, *,
            rows: int = 2500, cols: int = 2048, sop_instance: str | None = None) -> Path:
    """CR, 2500x2048x16 bit = ~10 MB of pixel data."""
    ds = _base_dataset(ComputedRadiographyImageStorage, "CR", study,
                       instance_number, sop_instance)
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    _set_mono_pixels(ds, _synthetic_image(rows, cols, instance_number, 12), 12)
    return save(ds, path)


def make_ct_series(outdir: Path, count: int, study: Study | None = None, *,
                   rows: int = 512, cols: int = 512, prefix: str = "ct") -> list[Path]:
    """`count` CT instances of one series, unique SOP Instance UIDs."""
    study = study or Study.new()
    outdir = Path(outdir)
    return [make_ct(outdir / f"{prefix}{i:05d}.dcm", study, i, rows=rows, cols=cols)
            for i in range(1, count + 1)]


def make_with_private_sop_class(path: Path, study: Study,
                                sop_class: str = "1.2.3.4.5.6.7") -> Path:
    """A small CT-like instance whose SOP Class UID is unknown to any SCP."""
    make_ct(path, study, rows=16, cols=16)
    ds = read(path)
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    return save(ds, path)


def with_modified_attribute(src: Path, dst: Path, **attrs) -> Path:
    """Copy of `src` (same UIDs) with some non-UID attributes changed."""
    ds = read(src)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return save(ds, dst)


# --------------------------------------------------------------------------
# transfer syntaxes


def run_dcmtk(tool: str, *args: str | os.PathLike) -> None:
    env = dict(os.environ, TCP_NODELAY="1")
    subprocess.run([str(DCMTK_BIN / tool), *map(str, args)], check=True,
                   capture_output=True, env=env, timeout=120)


def _encapsulated_synthetic(path: Path, study: Study, ts: str, magic: bytes,
                            video: bool) -> Path:
    """Instance with a made-up (undecodable) encapsulated fragment."""
    sop_class = VideoPhotographicImageStorage if video else CTImageStorage
    ds = _base_dataset(sop_class, "XC" if video else "CT", study, 1, None)
    ds.file_meta.TransferSyntaxUID = ts
    rows, cols = (64, 64)
    ds.SamplesPerPixel = 3 if video else 1
    ds.PhotometricInterpretation = "YBR_PARTIAL_420" if video else "MONOCHROME2"
    if video:
        ds.PlanarConfiguration = 0
        ds.NumberOfFrames = 2
        ds.FrameTime = "40"
        ds.FrameIncrementPointer = 0x00181063
        ds.CineRate = 25
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8 if video else 16
    ds.BitsStored = 8 if video else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01" if ts in (TS_J2K, TS_HTJ2K) or video else "00"
    # Deterministic payload, even length, unique per TS.
    payload = magic + ts.encode() + bytes(range(256)) * 8 + b"\xff\xd9"
    if len(payload) % 2:
        payload += b"\x00"
    ds.PixelData = encapsulate([payload])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return save(ds, path)


def make_ct_all_transfer_syntaxes(outdir: Path, study: Study | None = None,
                                  transfer_syntaxes: list[str] | None = None,
                                  rows: int = 128, cols: int = 128) -> dict[str, Path]:
    """One instance per transfer syntax (each with its own SOP Instance UID).

    Returns {transfer syntax UID: file path}. Files are verified to carry the
    intended TransferSyntaxUID in their file meta."""
    study = study or Study.new()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path] = {}
    for n, ts in enumerate(transfer_syntaxes or ALL_TRANSFER_SYNTAXES, start=1):
        dst = outdir / f"ts_{ts}.dcm"
        if ts in DCMTK_TRANSCODES:
            tool, flags, base = DCMTK_TRANSCODES[ts]
            src = make_ct(outdir / f"src_{ts}.dcm", study, n, rows=rows, cols=cols,
                          bits8=(base == "ct8"))
            run_dcmtk(tool, *flags, src, dst)
            src.unlink()
        else:
            magic, video = SYNTHETIC_ENCAPSULATED[ts]
            _encapsulated_synthetic(dst, study, ts, magic, video)
        actual = read(dst).file_meta.TransferSyntaxUID
        if actual != ts:
            raise RuntimeError(f"{dst}: wanted transfer syntax {ts}, got {actual}")
        result[ts] = dst
    return result


# --------------------------------------------------------------------------
# reading back


def read(path: Path, **kw) -> Dataset:
    from pydicom import dcmread
    return dcmread(path, **kw)


def dataset_bytes(path: Path) -> bytes:
    """The raw bytes after the File Meta Information group of a Part-10 file:
    exactly the data set as encoded in the file's transfer syntax."""
    return dataset_bytes_of(Path(path).read_bytes(), str(path))


def dataset_bytes_of(data: bytes, what: str = "data") -> bytes:
    """The same, of Part-10 bytes in memory (a file or an instance read from a spool)."""
    if data[128:132] != b"DICM":
        raise ValueError(f"{what}: not a Part-10 file")
    # (0002,0000) File Meta Information Group Length, always Explicit VR LE:
    # tag(4) 'UL'(2) len(2) value(4) -> value at offset 132+8.
    if data[132:136] != b"\x02\x00\x00\x00":
        raise ValueError(f"{what}: file meta has no group length first")
    group_len = int.from_bytes(data[140:144], "little")
    return data[144 + group_len:]


def file_meta(path: Path) -> Dataset:
    from pydicom.filereader import read_file_meta_info
    return read_file_meta_info(path)


def file_meta_of(part10: bytes) -> Dataset:
    """The File Meta Information of Part-10 bytes in memory."""
    import io
    from pydicom import dcmread
    return dcmread(io.BytesIO(part10), stop_before_pixels=True).file_meta


def make_large_multiframe(path: Path, study: Study, frames: int, rows: int = 1024, cols: int = 1024) -> Path:
    """An Enhanced CT-like multi-frame instance of frames×rows×cols×16 bits, written by
    streaming the Pixel Data so that a 1 GiB file never sits in this process's memory."""
    from pydicom.uid import EnhancedCTImageStorage
    ds = _base_dataset(EnhancedCTImageStorage, "CT", study, 1, None)
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    path = save(ds, path)  # everything but Pixel Data, which sorts last (7FE0,0010)
    frame = _synthetic_image(rows, cols, seed=7, bits=12).tobytes()
    length = len(frame) * frames
    with open(path, "ab") as f:
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))
        for _ in range(frames):
            f.write(frame)
    return path
