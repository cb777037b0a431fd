import NIOCore

/// DICOM files, PS3.10 §7.1.
///
/// ```
/// +----------------+--------+-----------------------------------------+-------------------+
/// | preamble (128) | "DICM" | group 0002, explicit VR little endian   | data set          |
/// |  zero bytes    |        | (0002,0000) UL = length of the rest     | (transfer syntax) |
/// +----------------+--------+-----------------------------------------+-------------------+
/// ```
public enum Part10 {
    /// Group 0002 larger than this is refused: it holds a handful of UIDs.
    public static let maxFileMetaInformationLength = 64 * 1024

    /// Preamble, prefix and file meta information for a new file.
    public static func fileMetaInformation(mediaStorageSOPClassUID: String, mediaStorageSOPInstanceUID: String,
                                           transferSyntaxUID: String,
                                           sourceApplicationEntityTitle: String?) -> ByteBuffer {
        var group = DataSetWriter(explicitVR: true, littleEndian: true)
        group.write(.fileMetaInformationVersion, .OB, [0x00, 0x01])
        group.write(.mediaStorageSOPClassUID, .UI, string: mediaStorageSOPClassUID)
        group.write(.mediaStorageSOPInstanceUID, .UI, string: mediaStorageSOPInstanceUID)
        group.write(.transferSyntaxUID, .UI, string: transferSyntaxUID)
        group.write(.implementationClassUID, .UI, string: Implementation.classUID)
        group.write(.implementationVersionName, .SH, string: Implementation.versionName)
        if let sourceApplicationEntityTitle {
            group.write(.sourceApplicationEntityTitle, .AE, string: sourceApplicationEntityTitle)
        }
        var out = ByteBuffer()
        out.reserveCapacity(132 + 12 + group.buffer.readableBytes)
        out.writeRepeatingByte(0, count: 128)
        out.writeString("DICM")
        var header = DataSetWriter(explicitVR: true, littleEndian: true)
        header.write(.fileMetaInformationGroupLength, uint32: UInt32(group.buffer.readableBytes))
        out.writeImmutableBuffer(header.buffer)
        out.writeImmutableBuffer(group.buffer)
        return out
    }

    /// Reads preamble, "DICM" and group 0002; leaves `source` at the first byte of the data set.
    public static func readFileMetaInformation(from source: inout some DICOMByteSource) throws(DataSetError) -> FileMetaInformation {
        let start = source.position
        var prefix = try source.read(132)
        prefix.moveReaderIndex(forwardBy: 128)
        guard prefix.readString(length: 4) == "DICM" else {
            throw DataSetError(.invalidFileMetaInformation, offset: start + 128, "no DICM prefix")
        }
        let walker = DataSetWalker(wanted: [])
        let encoding = DataSetWalker.Encoding(isExplicitVR: true, isLittleEndian: true)
        let first = try walker.readHeader(&source, encoding: encoding)
        guard first.tag == .fileMetaInformationGroupLength, first.vr == .UL, first.length == 4 else {
            throw DataSetError(.invalidFileMetaInformation, offset: source.position,
                               "file meta information does not start with (0002,0000) UL")
        }
        var lengthBytes = try source.read(4)
        guard let groupLength = lengthBytes.readInteger(endianness: .little, as: UInt32.self),
              let length = Int(exactly: groupLength), length <= maxFileMetaInformationLength
        else {
            throw DataSetError(.invalidFileMetaInformation, offset: source.position, "file meta information too long")
        }
        let groupStart = source.position
        var group = BufferByteSource(try source.read(length))
        var meta = FileMetaInformation(dataSetOffset: source.position - start)
        while !group.isAtEnd() {
            let header: DataSetWalker.Header
            do {
                header = try walker.readHeader(&group, encoding: encoding)
            } catch {
                throw DataSetError(error.code, offset: groupStart + group.position, error.message)
            }
            guard header.tag.group == 0x0002, let valueLength = header.length else {
                throw DataSetError(.invalidFileMetaInformation, offset: groupStart + group.position,
                                   "\(header.tag) in file meta information")
            }
            let value: ByteBuffer
            do {
                value = try group.read(valueLength)
            } catch {
                throw DataSetError(.truncated, offset: groupStart + group.position, "\(header.tag) overruns group 0002")
            }
            let text = InstanceAttributes.trim(SpecificCharacterSet.latin1(Array(value.readableBytesView)), vr: header.vr ?? .UN)
            switch header.tag {
            case .fileMetaInformationVersion: meta.fileMetaInformationVersion = Array(value.readableBytesView)
            case .mediaStorageSOPClassUID: meta.mediaStorageSOPClassUID = text
            case .mediaStorageSOPInstanceUID: meta.mediaStorageSOPInstanceUID = text
            case .transferSyntaxUID: meta.transferSyntaxUID = text
            case .implementationClassUID: meta.implementationClassUID = text
            case .implementationVersionName: meta.implementationVersionName = text
            case .sourceApplicationEntityTitle: meta.sourceApplicationEntityTitle = text
            default: break
            }
        }
        return meta
    }
}
