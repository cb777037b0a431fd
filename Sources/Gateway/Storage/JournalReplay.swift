import DICOMCore
import Foundation
import Logging
import Spool

/// Start-up, before anything is received: indexes the journal records past each segment's
/// checkpoint (acknowledged instances and HL7 messages whose rows a crash or a power cut undid), then deletes
/// the segments nothing references. The same walk as at reception, from the segment.
enum JournalReplay {
    struct Summary: Equatable {
        var indexed = 0
        var alreadyIndexed = 0
        /// Acknowledged HL7 messages whose rows the crash undid.
        var hl7Indexed = 0
        var unreadable = 0
        var torn: [String] = []
        var segmentsReclaimed = 0
    }

    static func run(spool: Spool, logger: Logger) throws -> Summary {
        var summary = Summary()
        let (records, torn) = try spool.unindexedJournalRecords()
        summary.torn = torn
        for record in records {
            if record.header.type == .hl7Message {
                do {
                    if try spool.indexReplayedHL7(record) { summary.hl7Indexed += 1 }
                } catch {
                    summary.unreadable += 1
                    logger.error("journal: HL7 message record cannot be indexed, skipped", metadata: [
                        "segment": "\(record.location.relativePath)", "offset": "\(record.location.payloadOffset)",
                        "error": "\(error)",
                    ])
                    try spool.skipReplayed(record)
                }
                continue
            }
            guard record.header.type == .dicomInstance else {
                try spool.skipReplayed(record)
                continue
            }
            do {
                let instance = try newInstance(record, root: spool.files.root)
                switch try spool.indexReplayed(instance, record: record) {
                case .duplicate: summary.alreadyIndexed += 1
                case .stored, .revised: summary.indexed += 1
                }
            } catch {
                // Never acknowledged as such cannot happen (records are checked before they
                // are written); keep going rather than refuse to start.
                summary.unreadable += 1
                logger.error("journal record cannot be indexed, skipped", metadata: [
                    "segment": "\(record.location.relativePath)", "offset": "\(record.location.payloadOffset)",
                    "error": "\(error)",
                ])
                try spool.skipReplayed(record)
            }
        }
        for reason in torn {
            logger.notice("journal: torn record after the last acknowledged one discarded (its sender got no success)",
                          metadata: ["where": "\(reason)"])
        }
        summary.segmentsReclaimed = try spool.reclaimSegments().segments
        try spool.pruneJournalCheckpoints()
        return summary
    }

    static func newInstance(_ record: JournalRecord, root: String) throws -> NewInstance {
        let fields = record.header.fields
        guard let transferSyntax = TransferSyntax(uid: fields[JournalFields.transferSyntaxUID] ?? ""),
              let dataSetOffset = Int(fields[JournalFields.dataSetOffset] ?? ""),
              dataSetOffset <= record.location.payloadLength else {
            throw JournalError("record lacks its transfer syntax or data set offset")
        }
        let location = StoredLocation(record.location, dataSetOffset: dataSetOffset)
        var source = try FileByteSource(path: "\(root)/\(location.relativePath)", offset: location.offset + dataSetOffset)
        let attributes = try InstanceRecord.attributes(
            from: &source, transferSyntax: transferSyntax, length: location.length - dataSetOffset,
            sopClassUID: fields[JournalFields.sopClassUID] ?? "", sopInstanceUID: fields[JournalFields.sopInstanceUID] ?? "")
        return InstanceRecord.newInstance(header: record.header, location: location, attributes: attributes)
    }
}
