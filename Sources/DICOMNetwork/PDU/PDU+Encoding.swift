import NIOCore

extension PDU {
    /// Serialises the whole PDU (header and variable field) into `buffer`, so the runtime
    /// can issue one write per PDU.
    ///
    /// Values that exceed what the wire can carry (an item longer than 65535 bytes, an AE
    /// title longer than 16 bytes) are truncated so that the framing stays valid.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(self.type.rawValue)
        buffer.writeInteger(UInt8(0))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        switch self {
        case .associateRQ(let rq):
            Self.writeAssociateBody(
                into: &buffer, protocolVersion: rq.protocolVersion, called: rq.calledAETitle,
                calling: rq.callingAETitle, applicationContext: rq.applicationContextName
            )
            for context in rq.presentationContexts {
                context.write(into: &buffer)
            }
            rq.userInformation.write(into: &buffer)
        case .associateAC(let ac):
            Self.writeAssociateBody(
                into: &buffer, protocolVersion: ac.protocolVersion, called: ac.calledAETitle,
                calling: ac.callingAETitle, applicationContext: ac.applicationContextName
            )
            for context in ac.presentationContexts {
                context.write(into: &buffer)
            }
            ac.userInformation.write(into: &buffer)
        case .associateRJ(let rj):
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(rj.result.rawValue)
            buffer.writeInteger(rj.reason.sourceWireValue)
            buffer.writeInteger(rj.reason.reasonWireValue)
        case .pDataTF(let pData):
            for pdv in pData.values {
                buffer.writeInteger(UInt32(truncatingIfNeeded: pdv.data.readableBytes + 2))
                buffer.writeInteger(pdv.contextID)
                buffer.writeInteger(pdv.messageControlHeader)
                buffer.writeImmutableBuffer(pdv.data)
            }
        case .releaseRQ, .releaseRP:
            buffer.writeInteger(UInt32(0))
        case .abort(let abort):
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(abort.source.wireValue)
            buffer.writeInteger(abort.reason.wireValue)
        }
        buffer.setInteger(UInt32(truncatingIfNeeded: buffer.writerIndex - start), at: lengthIndex)
    }

    /// The PDU serialised into a new buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        self.write(into: &buffer)
        return buffer
    }

    private static func writeAssociateBody(
        into buffer: inout ByteBuffer, protocolVersion: UInt16, called: String, calling: String,
        applicationContext: String
    ) {
        buffer.writeInteger(protocolVersion)
        buffer.writeInteger(UInt16(0))
        buffer.writePDUAETitle(called)
        buffer.writePDUAETitle(calling)
        buffer.writeRepeatingByte(0, count: 32)
        buffer.writePDUItem(type: 0x10) { $0.writeString(applicationContext) }
    }
}

extension PresentationContextProposal {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePDUItem(type: 0x20) { item in
            item.writeInteger(self.id)
            item.writeRepeatingByte(0, count: 3)
            item.writePDUItem(type: 0x30) { $0.writeString(self.abstractSyntax) }
            for transferSyntax in self.transferSyntaxes {
                item.writePDUItem(type: 0x40) { $0.writeString(transferSyntax) }
            }
        }
    }
}

extension PresentationContextResult {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePDUItem(type: 0x21) { item in
            item.writeInteger(self.id)
            item.writeInteger(UInt8(0))
            item.writeInteger(self.result.rawValue)
            item.writeInteger(UInt8(0))
            item.writePDUItem(type: 0x40) { $0.writeString(self.transferSyntax) }
        }
    }
}

extension UserInformation {
    func write(into buffer: inout ByteBuffer) {
        buffer.writePDUItem(type: 0x50) { item in
            item.writePDUItem(type: 0x51) { $0.writeInteger(self.maximumLength) }
            if let uid = self.implementationClassUID {
                item.writePDUItem(type: 0x52) { $0.writeString(uid) }
            }
            if let window = self.asynchronousOperationsWindow {
                item.writePDUItem(type: 0x53) {
                    $0.writeInteger(window.maximumOperationsInvoked)
                    $0.writeInteger(window.maximumOperationsPerformed)
                }
            }
            for role in self.roleSelections {
                item.writePDUItem(type: 0x54) {
                    $0.writeUInt16Prefixed(Array(role.sopClassUID.utf8))
                    $0.writeInteger(UInt8(role.scuRole ? 1 : 0))
                    $0.writeInteger(UInt8(role.scpRole ? 1 : 0))
                }
            }
            if let name = self.implementationVersionName {
                item.writePDUItem(type: 0x55) { $0.writeString(name) }
            }
            for negotiation in self.sopClassExtendedNegotiations {
                item.writePDUItem(type: 0x56) {
                    $0.writeUInt16Prefixed(Array(negotiation.sopClassUID.utf8))
                    $0.writeBytes(negotiation.serviceClassApplicationInformation)
                }
            }
            for negotiation in self.sopClassCommonExtendedNegotiations {
                item.writePDUItem(type: 0x57, reservedByte: 0) { sub in
                    sub.writeUInt16Prefixed(Array(negotiation.sopClassUID.utf8))
                    sub.writeUInt16Prefixed(Array(negotiation.serviceClassUID.utf8))
                    var related = ByteBuffer()
                    for uid in negotiation.relatedGeneralSOPClassUIDs {
                        related.writeUInt16Prefixed(Array(uid.utf8))
                    }
                    sub.writeUInt16Prefixed(related.readableBytesView)
                }
            }
            if let identity = self.userIdentity {
                item.writePDUItem(type: 0x58) {
                    $0.writeInteger(identity.type.rawValue)
                    $0.writeInteger(UInt8(identity.positiveResponseRequested ? 1 : 0))
                    $0.writeUInt16Prefixed(identity.primaryField)
                    $0.writeUInt16Prefixed(identity.secondaryField)
                }
            }
            if let response = self.userIdentityResponse {
                item.writePDUItem(type: 0x59) { $0.writeUInt16Prefixed(response.serverResponse) }
            }
        }
    }
}
