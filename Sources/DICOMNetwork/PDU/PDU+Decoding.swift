import NIOCore

extension PDU {
    /// Parses a PDU whose header has been read: `type` is the PDU-type byte and `body` the
    /// complete variable field (exactly PDU-length bytes).
    public static func parse(type: UInt8, body: ByteBuffer) throws(PDUDecodingError) -> PDU {
        guard let pduType = PDUType(rawValue: type) else { throw .unknownPDUType(type) }
        var reader = PDUReader(body)
        switch pduType {
        case .associateRQ:
            let header = try parseAssociateHeader(&reader, name: "A-ASSOCIATE-RQ")
            var contexts: [PresentationContextProposal] = []
            var userInformation: UserInformation?
            var applicationContext: String?
            while reader.remaining > 0 {
                let (itemType, value) = try reader.item(in: "A-ASSOCIATE-RQ")
                switch itemType {
                case 0x10:
                    guard applicationContext == nil else { throw .invalidValue("duplicate application context item") }
                    applicationContext = String(pduBytes: value.buffer.readableBytesView)
                case 0x20: contexts.append(try PresentationContextProposal.parse(value))
                case 0x50:
                    guard userInformation == nil else { throw .invalidValue("duplicate user information item") }
                    userInformation = try UserInformation.parse(value)
                default: continue  // PS3.8 §9.3.1: items of unrecognised type are ignored.
                }
            }
            guard let applicationContext else { throw .missingItem("A-ASSOCIATE-RQ without application context item") }
            return .associateRQ(
                AssociateRQ(
                    protocolVersion: header.version, calledAETitle: header.called, callingAETitle: header.calling,
                    applicationContextName: applicationContext, presentationContexts: contexts,
                    userInformation: userInformation ?? UserInformation()
                )
            )
        case .associateAC:
            let header = try parseAssociateHeader(&reader, name: "A-ASSOCIATE-AC")
            var contexts: [PresentationContextResult] = []
            var userInformation: UserInformation?
            var applicationContext: String?
            while reader.remaining > 0 {
                let (itemType, value) = try reader.item(in: "A-ASSOCIATE-AC")
                switch itemType {
                case 0x10:
                    guard applicationContext == nil else { throw .invalidValue("duplicate application context item") }
                    applicationContext = String(pduBytes: value.buffer.readableBytesView)
                case 0x21: contexts.append(try PresentationContextResult.parse(value))
                case 0x50:
                    guard userInformation == nil else { throw .invalidValue("duplicate user information item") }
                    userInformation = try UserInformation.parse(value)
                default: continue
                }
            }
            guard let applicationContext else { throw .missingItem("A-ASSOCIATE-AC without application context item") }
            return .associateAC(
                AssociateAC(
                    protocolVersion: header.version, calledAETitle: header.called, callingAETitle: header.calling,
                    applicationContextName: applicationContext, presentationContexts: contexts,
                    userInformation: userInformation ?? UserInformation()
                )
            )
        case .associateRJ:
            try expectLength(reader, 4, "A-ASSOCIATE-RJ")
            _ = try reader.uint8("A-ASSOCIATE-RJ reserved")
            let resultValue = try reader.uint8("A-ASSOCIATE-RJ result")
            let source = try reader.uint8("A-ASSOCIATE-RJ source")
            let reasonValue = try reader.uint8("A-ASSOCIATE-RJ reason")
            guard let result = AssociateRJ.Result(rawValue: resultValue) else {
                throw .invalidValue("A-ASSOCIATE-RJ result \(resultValue)")
            }
            guard let reason = AssociateRJ.Reason(source: source, reason: reasonValue) else {
                throw .invalidValue("A-ASSOCIATE-RJ source \(source)")
            }
            return .associateRJ(AssociateRJ(result: result, reason: reason))
        case .pDataTF:
            guard reader.remaining > 0 else { throw .invalidPDVLength("P-DATA-TF without presentation data value") }
            var values: [PresentationDataValue] = []
            while reader.remaining > 0 {
                guard reader.remaining >= 4 else { throw .truncated("PDV item length") }
                let length = try reader.uint32("PDV item length")
                guard length >= 2 else { throw .invalidPDVLength("PDV item length \(length) < 2") }
                guard length <= UInt32(reader.remaining) else {
                    throw .invalidPDVLength("PDV item length \(length) overruns the PDU (\(reader.remaining) bytes left)")
                }
                let contextID = try reader.uint8("PDV context ID")
                let header = try reader.uint8("PDV message control header")
                let data = try reader.slice(Int(length) - 2, "PDV data")
                values.append(
                    PresentationDataValue(
                        contextID: contextID, isCommand: header & 0x01 != 0, isLast: header & 0x02 != 0, data: data
                    )
                )
            }
            return .pDataTF(PDataTF(values: values))
        case .releaseRQ, .releaseRP:
            try expectLength(reader, 4, pduType == .releaseRQ ? "A-RELEASE-RQ" : "A-RELEASE-RP")
            return pduType == .releaseRQ ? .releaseRQ : .releaseRP
        case .abort:
            try expectLength(reader, 4, "A-ABORT")
            _ = try reader.uint16("A-ABORT reserved")
            let source = try reader.uint8("A-ABORT source")
            let reason = try reader.uint8("A-ABORT reason")
            return .abort(AAbort(source: .init(wireValue: source), reason: .init(wireValue: reason)))
        }
    }

    private static func expectLength(_ reader: PDUReader, _ length: Int, _ name: String) throws(PDUDecodingError) {
        if reader.remaining < length { throw .truncated(name) }
        if reader.remaining > length { throw .trailingBytes("\(name) has length \(reader.remaining), expected \(length)") }
    }

    private static func parseAssociateHeader(
        _ reader: inout PDUReader, name: String
    ) throws(PDUDecodingError) -> (version: UInt16, called: String, calling: String) {
        guard reader.remaining >= 68 else { throw .truncated("\(name) fixed fields") }
        let version = try reader.uint16("protocol version")
        try reader.skip(2, "reserved")
        let called = String(aeTitleBytes: try reader.bytes(16, "called AE title"))
        let calling = String(aeTitleBytes: try reader.bytes(16, "calling AE title"))
        try reader.skip(32, "reserved")
        return (version, called, calling)
    }
}

extension PresentationContextProposal {
    static func parse(_ item: PDUReader) throws(PDUDecodingError) -> Self {
        var reader = item
        guard reader.remaining >= 4 else { throw .truncated("presentation context item (0x20)") }
        let id = try reader.uint8("presentation context ID")
        try reader.skip(3, "reserved")
        var abstractSyntax: String?
        var transferSyntaxes: [String] = []
        while reader.remaining > 0 {
            let (type, value) = try reader.item(in: "presentation context \(id)")
            switch type {
            case 0x30:
                guard abstractSyntax == nil else { throw .invalidValue("presentation context \(id): two abstract syntaxes") }
                abstractSyntax = String(pduBytes: value.buffer.readableBytesView)
            case 0x40: transferSyntaxes.append(String(pduBytes: value.buffer.readableBytesView))
            default: continue
            }
        }
        guard let abstractSyntax else { throw .missingItem("presentation context \(id) without abstract syntax") }
        guard !transferSyntaxes.isEmpty else { throw .missingItem("presentation context \(id) without transfer syntax") }
        return PresentationContextProposal(id: id, abstractSyntax: abstractSyntax, transferSyntaxes: transferSyntaxes)
    }
}

extension PresentationContextResult {
    static func parse(_ item: PDUReader) throws(PDUDecodingError) -> Self {
        var reader = item
        guard reader.remaining >= 4 else { throw .truncated("presentation context item (0x21)") }
        let id = try reader.uint8("presentation context ID")
        try reader.skip(1, "reserved")
        let resultValue = try reader.uint8("presentation context result")
        try reader.skip(1, "reserved")
        guard let result = Result(rawValue: resultValue) else {
            throw .invalidValue("presentation context \(id): result \(resultValue)")
        }
        var transferSyntax: String?
        while reader.remaining > 0 {
            let (type, value) = try reader.item(in: "presentation context \(id)")
            if type == 0x40 {
                guard transferSyntax == nil else { throw .invalidValue("presentation context \(id): two transfer syntaxes") }
                transferSyntax = String(pduBytes: value.buffer.readableBytesView)
            }
        }
        if result == .acceptance, transferSyntax == nil {
            throw .missingItem("accepted presentation context \(id) without transfer syntax")
        }
        return PresentationContextResult(id: id, result: result, transferSyntax: transferSyntax ?? "")
    }
}

extension UserInformation {
    static func parse(_ item: PDUReader) throws(PDUDecodingError) -> Self {
        var reader = item
        var info = UserInformation()
        while reader.remaining > 0 {
            var (type, value) = try reader.item(in: "user information")
            switch type {
            case 0x51:
                guard value.remaining == 4 else { throw .invalidItemLength("maximum length sub-item length \(value.remaining)") }
                info.maximumLength = try value.uint32("maximum length")
            case 0x52:
                info.implementationClassUID = String(pduBytes: value.buffer.readableBytesView)
            case 0x53:
                guard value.remaining == 4 else { throw .invalidItemLength("async window sub-item length \(value.remaining)") }
                info.asynchronousOperationsWindow = AsynchronousOperationsWindow(
                    maximumOperationsInvoked: try value.uint16("max operations invoked"),
                    maximumOperationsPerformed: try value.uint16("max operations performed")
                )
            case 0x54:
                let uid = try value.uint16Prefixed("role selection SOP class UID")
                let scu = try value.uint8("SCU role")
                let scp = try value.uint8("SCP role")
                try value.expectEnd("role selection sub-item")
                info.roleSelections.append(
                    RoleSelection(sopClassUID: String(pduBytes: uid), scuRole: scu != 0, scpRole: scp != 0)
                )
            case 0x55:
                info.implementationVersionName = String(pduBytes: value.buffer.readableBytesView)
            case 0x56:
                let uid = try value.uint16Prefixed("extended negotiation SOP class UID")
                info.sopClassExtendedNegotiations.append(
                    SOPClassExtendedNegotiation(
                        sopClassUID: String(pduBytes: uid),
                        serviceClassApplicationInformation: Array(value.buffer.readableBytesView)
                    )
                )
            case 0x57:
                let uid = try value.uint16Prefixed("common extended negotiation SOP class UID")
                let serviceClass = try value.uint16Prefixed("service class UID")
                var related = PDUReader(ByteBuffer(bytes: try value.uint16Prefixed("related general SOP classes")))
                try value.expectEnd("common extended negotiation sub-item")
                var relatedUIDs: [String] = []
                while related.remaining > 0 {
                    relatedUIDs.append(String(pduBytes: try related.uint16Prefixed("related general SOP class UID")))
                }
                info.sopClassCommonExtendedNegotiations.append(
                    SOPClassCommonExtendedNegotiation(
                        sopClassUID: String(pduBytes: uid), serviceClassUID: String(pduBytes: serviceClass),
                        relatedGeneralSOPClassUIDs: relatedUIDs
                    )
                )
            case 0x58:
                let type = try value.uint8("user identity type")
                let positive = try value.uint8("positive response requested")
                let primary = try value.uint16Prefixed("user identity primary field")
                let secondary = try value.uint16Prefixed("user identity secondary field")
                try value.expectEnd("user identity sub-item")
                info.userIdentity = UserIdentity(
                    type: .init(rawValue: type), positiveResponseRequested: positive == 1,
                    primaryField: primary, secondaryField: secondary
                )
            case 0x59:
                let response = try value.uint16Prefixed("user identity server response")
                try value.expectEnd("user identity response sub-item")
                info.userIdentityResponse = UserIdentityResponse(serverResponse: response)
            default:
                continue  // Unknown sub-items are skipped.
            }
        }
        return info
    }
}

extension PDUReader {
    mutating func uint16Prefixed(_ what: @autoclosure () -> String) throws(PDUDecodingError) -> [UInt8] {
        let length = Int(try uint16("\(what()) length"))
        guard length <= remaining else {
            throw .invalidItemLength("\(what()) declares \(length) bytes, only \(remaining) remain")
        }
        return try bytes(length, what())
    }
}
