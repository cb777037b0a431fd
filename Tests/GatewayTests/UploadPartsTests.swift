import Crypto
import DICOMCore
import DICOMweb
import Foundation
import NIOCore
import Spool
import Testing
@testable import Gateway

/// The pure parts of the uploader: backoff, bandwidth, verdicts, routing, the issuer splice.
@Suite struct UploadPartsTests {
    @Test func backoffDoublesFromTheMinimumUpToTheMaximumWithinTheJitter() {
        let backoff = Backoff(minimum: .seconds(2), maximum: .seconds(60))
        #expect(backoff.delay(afterFailures: 1, jitter: 0) == .seconds(2))
        #expect(backoff.delay(afterFailures: 3, jitter: 0) == .seconds(8))
        #expect(backoff.delay(afterFailures: 40, jitter: 0) == .seconds(60))
        #expect(backoff.delay(afterFailures: 40, jitter: 1) == .seconds(75))
        #expect(backoff.delay(afterFailures: 40, jitter: -1) == .seconds(45))
        #expect(backoff.delay(afterFailures: 1, jitter: -1) == .milliseconds(1500))
        for _ in 0..<100 {
            let delay = backoff.delay(afterFailures: 5)
            #expect(delay >= .seconds(24) && delay <= .seconds(40))
        }
    }

    @Test func tokenBucketHoldsOneSecondOfCreditAndMakesSendersWaitForTheRest() {
        let start = ContinuousClock.now
        var bucket = TokenBucket(bytesPerSecond: 1000, start: start)
        #expect(bucket.reserve(600, at: start) == nil, "a full bucket pays at once")
        #expect(bucket.reserve(900, at: start) == .milliseconds(500), "400 left: 500 bytes on credit")
        // Half a second later the debt is paid; another 1000 bytes wait a full second.
        #expect(bucket.reserve(1000, at: start + .milliseconds(500)) == .seconds(1))
        // A long idle period refills to one second's worth, not more.
        #expect(bucket.reserve(1000, at: start + .seconds(60)) == nil)
        #expect(bucket.reserve(1, at: start + .seconds(60)) == .milliseconds(1))
        var unlimited = TokenBucket(bytesPerSecond: nil, start: start)
        #expect(unlimited.reserve(1 << 30, at: start) == nil)
    }

    @Test func bandwidthScheduleWindowsOverrideTheDefaultAndMayWrapMidnight() throws {
        var upload = UploadSettings()
        upload.bandwidth = 5_000_000
        upload.bandwidthSchedule = [try #require(BandwidthWindow.parse("08:00-18:00 16Mbit")),
                                    try #require(BandwidthWindow.parse("22:00-06:00 unlimited"))]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        func at(_ hour: Int, _ minute: Int = 0) -> Date {
            calendar.date(from: DateComponents(year: 2026, month: 11, day: 23, hour: hour, minute: minute))!
        }
        #expect(upload.bandwidth(at: at(9), calendar: calendar) == 2_000_000)
        #expect(upload.bandwidth(at: at(18), calendar: calendar) == 5_000_000, "the end is exclusive")
        #expect(upload.bandwidth(at: at(23), calendar: calendar) == nil)
        #expect(upload.bandwidth(at: at(5, 59), calendar: calendar) == nil)
        #expect(upload.bandwidth(at: at(7), calendar: calendar) == 5_000_000)
        for bad in ["08:00-18:00", "8-18 1Mbit", "25:00-01:00 1Mbit", "10:00-10:00 1Mbit", "08:00-18:00 fast"] {
            #expect(BandwidthWindow.parse(bad) == nil, "\(bad)")
        }
    }

    func chunkInstance(_ n: Int, attempts: Int = 1) -> ChunkInstance {
        ChunkInstance(instanceID: Int64(n), studyInstanceUID: "1.2", sopInstanceUID: "1.2.\(n)",
                      transferSyntaxUID: "1.2.840.10008.1.2.1",
                      location: StoredLocation(relativePath: "f", offset: 0, length: 1, dataSetOffset: 0),
                      sha256: "h\(n)", lacksIssuerOfPatientID: false, attempts: attempts)
    }

    @Test func verdictsFollowTheHubsPerInstanceResults() {
        let now = Date(timeIntervalSince1970: 0)
        let chunk = [(chunkInstance(1), "s1"), (chunkInstance(2), "s2"), (chunkInstance(3), "s3"),
                     (chunkInstance(4), "s4"), (chunkInstance(5), "s5"), (chunkInstance(6, attempts: 5), "s6")]
        let results: [String: STOWInstanceResult] = [
            "1.2.1": .stored(warning: nil), "1.2.2": .stored(warning: 0xB000), "1.2.3": .failed(reason: 0xA700),
            "1.2.4": .failed(reason: 0xC000), "1.2.6": .failed(reason: 0x0110),
        ]
        let outcomes = ChunkVerdict.outcomes(for: chunk, results: results, now: now, retryDelay: { _ in .seconds(10) })
        let later = now.addingTimeInterval(10)
        #expect(outcomes[0].outcome == .stored(sentSHA256: "s1"))
        #expect(outcomes[1].outcome == .stored(sentSHA256: "s2"), "a warning is still stored")
        #expect(outcomes[2].outcome == .retry(at: later, reason: "hub FailureReason 0xA700 (out of resources)"))
        #expect(outcomes[3].outcome == .rejected(reason: "hub FailureReason 0xC000 (cannot understand)"))
        #expect(outcomes[4].outcome == .retry(at: later, reason: "the hub's answer did not mention this instance"))
        #expect(outcomes[5].outcome == .rejected(reason: "hub FailureReason 0x0110 (processing failure)"),
                "processing failures are retried a few times, then rejected")
    }

    @Test func failedRequestsHoldTheDestinationUnlessTheContentIsAtFault() {
        func error(_ kind: DICOMwebError.Kind, _ code: DICOMwebError.Code, _ status: Int?) -> DICOMwebError {
            DICOMwebError(kind: kind, code: code, url: "u", status: status, message: "m")
        }
        #expect(ChunkVerdict.disposition(of: .forStatus(503, url: "u")) == .holdDestination)
        #expect(ChunkVerdict.disposition(of: .forStatus(401, url: "u")) == .holdDestination)
        #expect(ChunkVerdict.disposition(of: .forStatus(404, url: "u")) == .holdDestination, "a wrong URL drops nothing")
        #expect(ChunkVerdict.disposition(of: .forStatus(415, url: "u")) == .holdDestination)
        #expect(ChunkVerdict.disposition(of: error(.retryable, .connection, nil)) == .holdDestination)
        #expect(ChunkVerdict.disposition(of: error(.configuration, .tls, nil)) == .holdDestination)
        #expect(ChunkVerdict.disposition(of: .forStatus(400, url: "u")) == .isolate)
        #expect(ChunkVerdict.disposition(of: .forStatus(409, url: "u")) == .isolate)
        #expect(ChunkVerdict.disposition(of: .forStatus(413, url: "u")) == .isolate)
    }

    @Test func routingRulesFilterByCallingAEModalityAndSOPClass() throws {
        var destination = DestinationSettings(name: "community", url: try #require(URL(string: "http://h/dw")))
        #expect(destination.accepts(callingAETitle: "ANY", modality: nil, sopClassUID: "1.2"))
        destination.callingAETitles = ["CT1"]
        destination.modalities = ["CT", "mr"]
        destination.excludeModalities = ["SR"]
        #expect(destination.accepts(callingAETitle: "CT1 ", modality: "MR", sopClassUID: "1.2"))
        #expect(!destination.accepts(callingAETitle: "CT2", modality: "CT", sopClassUID: "1.2"))
        #expect(!destination.accepts(callingAETitle: "CT1", modality: "CR", sopClassUID: "1.2"))
        destination.modalities = []
        #expect(!destination.accepts(callingAETitle: "CT1", modality: "SR", sopClassUID: "1.2"))
        destination.sopClasses = ["1.2.840.10008.5.1.4.1.1.2"]
        #expect(destination.accepts(callingAETitle: "CT1", modality: "CT", sopClassUID: "1.2.840.10008.5.1.4.1.1.2"))
        #expect(!destination.accepts(callingAETitle: "CT1", modality: "CT", sopClassUID: "1.2.840.10008.5.1.4.1.1.4"))
    }

    // MARK: IssuerOfPatientID on the way out

    /// A Part-10 file whose data set has a sequence before the patient module, with or without
    /// an IssuerOfPatientID (empty when `issuer` is "").
    func makeFile(_ syntax: TransferSyntax, issuer: String?) throws -> (path: String, dataSetOffset: Int) {
        var writer = DataSetWriter(transferSyntax: syntax)
        writer.write(.sopClassUID, .UI, string: "1.2.840.10008.5.1.4.1.1.2")
        writer.write(.sopInstanceUID, .UI, string: "1.2.3.4")
        writer.beginSequence(Tag(0x0008, 0x1110))  // Referenced Study Sequence, undefined length
        writer.beginItem()
        writer.write(Tag(0x0008, 0x1150), .UI, string: "1.2.3")
        writer.endItem()
        writer.endSequence()
        writer.write(.patientName, .PN, string: "Doe^J")
        writer.write(.patientID, .LO, string: "IPP1")
        if let issuer { writer.write(.issuerOfPatientID, .LO, string: issuer) }
        writer.write(Tag(0x0010, 0x0030), .DA, string: "19700101")
        writer.write(.pixelData, .OW, [UInt8](repeating: 9, count: 64))
        var file = Part10.fileMetaInformation(mediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
                                              mediaStorageSOPInstanceUID: "1.2.3.4", transferSyntaxUID: syntax.uid,
                                              sourceApplicationEntityTitle: nil)
        let offset = file.readableBytes
        file.writeImmutableBuffer(writer.buffer)
        let path = NSTemporaryDirectory() + "issuer-" + UUID().uuidString + ".dcm"
        try Data(file.readableBytesView).write(to: URL(fileURLWithPath: path))
        return (path, offset)
    }

    func sentBytes(_ part: STOWRequestBody.Part) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        let body = STOWRequestBody(parts: [part], boundary: "b", chunkSize: 7)
        for try await chunk in body {
            bytes += chunk.readableBytesView
        }
        #expect(body.contentLength == Int64(bytes.count), "Content-Length counts the splice")
        let header = Array("--b\r\nContent-Type: application/dicom\r\n\r\n".utf8)
        return Array(bytes.dropFirst(header.count).dropLast("\r\n--b--\r\n".utf8.count))
    }

    func issuer(inFile bytes: [UInt8], dataSetOffset: Int, syntax: TransferSyntax) throws -> (String?, Int) {
        var source = BufferByteSource(ByteBuffer(bytes: bytes.dropFirst(dataSetOffset)))
        let values = try DataSetReader.readValues([.issuerOfPatientID, .patientID, Tag(0x0010, 0x0030)], from: &source,
                                                  transferSyntax: syntax, length: nil)
        let issuer = values[.issuerOfPatientID].map { String(decoding: $0.readableBytesView, as: UTF8.self) }
        return (issuer, values.count)
    }

    @Test(arguments: [TransferSyntax.explicitVRLittleEndian, .implicitVRLittleEndian, .explicitVRBigEndian])
    func aMissingOrEmptyIssuerIsSplicedInAndNothingElseChanges(syntax: TransferSyntax) async throws {
        for existing in [nil, ""] as [String?] {
            let (path, offset) = try makeFile(syntax, issuer: existing)
            defer { unlink(path) }
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            // As in a journal segment: other bytes before and after the instance.
            let segment = path + ".seg"
            defer { unlink(segment) }
            let around = [UInt8](repeating: 0xAB, count: 1000) + original + [UInt8](repeating: 0xCD, count: 500)
            try Data(around).write(to: URL(fileURLWithPath: segment))
            let instance = ChunkInstance(
                instanceID: 1, studyInstanceUID: "1.2", sopInstanceUID: "1.2.3.4", transferSyntaxUID: syntax.uid,
                location: StoredLocation(relativePath: (segment as NSString).lastPathComponent, offset: 1000,
                                         length: original.count, dataSetOffset: offset),
                sha256: "orig", lacksIssuerOfPatientID: true, attempts: 1)
            let outgoing = try OutgoingInstance(instance, root: NSTemporaryDirectory(), issuer: "CHR-ORLEANS")
            let sent = try await sentBytes(outgoing.part)
            let (issuer, found) = try issuer(inFile: sent, dataSetOffset: offset, syntax: syntax)
            #expect(issuer == "CHR-ORLEANS ", "LO padded to an even length")
            #expect(found == 3, "patient ID and birth date still there")
            #expect(outgoing.sentSHA256 == SHA256Hex.of(sent))
            // Nothing else changed: the file with the same element written by a writer is identical.
            let (expectedPath, _) = try makeFile(syntax, issuer: "CHR-ORLEANS")
            defer { unlink(expectedPath) }
            #expect(sent == Array(try Data(contentsOf: URL(fileURLWithPath: expectedPath))))
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: segment))) == around, "the spool is untouched")
        }
    }

    @Test func anInstanceWithAnIssuerOrADeflatedOneIsSentUnchanged() throws {
        let (path, offset) = try makeFile(.explicitVRLittleEndian, issuer: "OTHER")
        defer { unlink(path) }
        var instance = ChunkInstance(
            instanceID: 1, studyInstanceUID: "1.2", sopInstanceUID: "1.2.3.4",
            transferSyntaxUID: TransferSyntax.explicitVRLittleEndian.uid,
            location: StoredLocation(relativePath: (path as NSString).lastPathComponent, offset: 0, length: 0,
                                     dataSetOffset: offset),
            sha256: "orig", lacksIssuerOfPatientID: false, attempts: 1)
        let kept = try OutgoingInstance(instance, root: NSTemporaryDirectory(), issuer: "CHR-ORLEANS")
        #expect(kept.part.splices.isEmpty && kept.sentSHA256 == "orig")
        instance.lacksIssuerOfPatientID = true
        instance.transferSyntaxUID = TransferSyntax.deflatedExplicitVRLittleEndian.uid
        let deflated = try OutgoingInstance(instance, root: NSTemporaryDirectory(), issuer: "CHR-ORLEANS")
        #expect(deflated.part.splices.isEmpty && !deflated.notes.isEmpty)
        let off = try OutgoingInstance(instance, root: NSTemporaryDirectory(), issuer: nil)
        #expect(off.part.splices.isEmpty && off.notes.isEmpty)
    }
}

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
