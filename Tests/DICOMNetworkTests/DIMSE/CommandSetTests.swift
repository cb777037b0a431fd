import NIOCore
import Testing

import DICOMNetwork

private let sampleMessages: [DIMSEMessage] = [
    .cEchoRQ(CEchoRQ(messageID: 1)),
    .cEchoRSP(CEchoRSP(messageIDBeingRespondedTo: 1, status: .success)),
    .cStoreRQ(CStoreRQ(messageID: 7, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", affectedSOPInstanceUID: "1.2.3.4.5",
        priority: .high, moveOriginatorAETitle: "MOVER", moveOriginatorMessageID: 99)),
    .cStoreRSP(CStoreRSP(messageIDBeingRespondedTo: 7, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
        affectedSOPInstanceUID: "1.2.3.4.5", status: .coercionOfDataElements, offendingElements: [0x0010_0010, 0x0008_0018],
        errorComment: "coerced")),
    .cFindRQ(CFindRQ(messageID: 2, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.1")),
    .cFindRSP(CFindRSP(messageIDBeingRespondedTo: 2, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.1", status: .pending, hasIdentifier: true)),
    .cMoveRQ(CMoveRQ(messageID: 3, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.2", moveDestination: "PACS")),
    .cMoveRSP(CMoveRSP(RetrieveResponseFields(messageIDBeingRespondedTo: 3, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.2",
        status: .pending, remaining: 10, completed: 2, failed: 0, warning: 1))),
    .cGetRQ(CGetRQ(messageID: 4, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.2.2.3", priority: .low)),
    .cGetRSP(CGetRSP(RetrieveResponseFields(messageIDBeingRespondedTo: 4, affectedSOPClassUID: nil,
        status: .subOperationsCompleteWithFailures, completed: 5, failed: 1, hasIdentifier: true))),
    .cCancelRQ(CCancelRQ(messageIDBeingRespondedTo: 2)),
]

@Suite struct CommandSetTests {
    @Test(arguments: sampleMessages)
    func messageRoundTrip(_ message: DIMSEMessage) throws {
        let encoded = message.commandSet.encoded()
        let decoded = try CommandSet.decode(encoded)
        #expect(decoded == message.commandSet)
        #expect(try DIMSEMessage(commandSet: decoded) == message)
        // Even lengths everywhere, group length first and correct.
        #expect(encoded.readableBytes % 2 == 0)
        #expect(encoded.getInteger(at: 0, endianness: .little, as: UInt32.self) == 0x0000_0000)
        #expect(encoded.getInteger(at: 4, endianness: .little, as: UInt32.self) == 4)
        #expect(Int(encoded.getInteger(at: 8, endianness: .little, as: UInt32.self) ?? 0) == encoded.readableBytes - 12)
    }

    @Test func cEchoRQWireBytes() {
        // C-ECHO-RQ as sent by DCMTK: group length 56, UID padded with NUL to 18 bytes.
        let encoded = CEchoRQ(messageID: 1).commandSet.encoded()
        let expected: [UInt8] = [
            0, 0, 0, 0, 4, 0, 0, 0, 56, 0, 0, 0,
            0, 0, 2, 0, 18, 0, 0, 0] + Array("1.2.840.10008.1.1".utf8) + [0,
            0, 0, 0, 1, 2, 0, 0, 0, 0x30, 0,
            0, 0, 0x10, 1, 2, 0, 0, 0, 1, 0,
            0, 0, 0, 8, 2, 0, 0, 0, 1, 1,
        ]
        #expect(Array(encoded.readableBytesView) == expected)
    }

    @Test func dataSetTypeAndPadding() throws {
        #expect(CEchoRQ(messageID: 1).commandSet.hasDataSet == false)
        #expect(CStoreRQ(messageID: 1, affectedSOPClassUID: "1.2", affectedSOPInstanceUID: "1.3").commandSet.hasDataSet)
        var set = CommandSet()
        set[.moveDestination] = .string("ODD")
        let encoded = set.encoded()
        #expect(encoded.getBytes(at: encoded.readableBytes - 4, length: 4) == Array("ODD ".utf8))
        #expect(try CommandSet.decode(encoded).string(.moveDestination) == "ODD")
    }

    @Test func unknownElementsAreKept() throws {
        var set = CEchoRQ(messageID: 5).commandSet
        set[CommandElement(rawValue: 0x4000)] = .bytes([1, 2, 3, 4])
        let decoded = try CommandSet.decode(set.encoded())
        #expect(decoded[CommandElement(rawValue: 0x4000)] == .bytes([1, 2, 3, 4]))
        #expect(try CEchoRQ(commandSet: decoded) == CEchoRQ(messageID: 5))
    }

    @Test func missingRequiredFieldIsAClearError() {
        var set = CStoreRQ(messageID: 1, affectedSOPClassUID: "1.2", affectedSOPInstanceUID: "1.3").commandSet
        set[.affectedSOPInstanceUID] = nil
        do {
            _ = try DIMSEMessage(commandSet: set)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .missingElement)
            #expect(error.message.contains("C-STORE-RQ"))
            #expect(error.message.contains("(0000,1000)"))
        }
    }

    @Test func unknownCommandField() {
        var set = CommandSet()
        set[.commandField] = .uint16(0x0140)  // N-ACTION-RQ
        #expect(throws: CommandSetError.self) { try DIMSEMessage(commandSet: set) }
    }

    @Test func hostileCommandSets() {
        func code(_ bytes: [UInt8]) -> CommandSetError.Code? {
            do { _ = try CommandSet.decode(ByteBuffer(bytes: bytes)); return nil } catch { return error.code }
        }
        #expect(code([0, 0, 0, 1, 2, 0]) == .truncated)  // header cut
        #expect(code([0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0]) == .truncated)  // length overruns
        #expect(code([8, 0, 0x18, 0, 2, 0, 0, 0, 1, 0]) == .notCommandGroup)
        #expect(code([0, 0, 0, 1, 3, 0, 0, 0, 1, 0, 0]) == .invalidLength)  // US of length 3
        #expect(code([0, 0, 0, 0, 4, 0, 0, 0, 99, 0, 0, 0]) == .groupLengthMismatch)
        #expect(code([0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0]) == .duplicateElement)
        #expect(code([0, 0, 1, 9, 3, 0, 0, 0, 1, 2, 3]) == .invalidLength)  // AT not multiple of 4
    }
}

@Suite struct DIMSEStatusTests {
    @Test(arguments: [
        (DIMSEStatus.success, DIMSEStatus.Kind.success), (.pending, .pending), (.pendingWithWarnings, .pending),
        (.cancel, .cancel), (.outOfResources, .failure), (.refusedOutOfResourcesSubOps, .failure),
        (.moveDestinationUnknown, .failure), (.dataSetDoesNotMatchSOPClass, .failure), (.cannotUnderstand, .failure),
        (.coercionOfDataElements, .warning), (.elementsDiscarded, .warning), (.dataSetDoesNotMatchSOPClassWarning, .warning),
        (.sopClassNotSupported, .failure), (.duplicateSOPInstance, .failure), (.processingFailure, .failure),
        (.unrecognizedOperation, .failure), (DIMSEStatus(0x0001), .warning), (DIMSEStatus(0xC123), .failure),
    ])
    func kinds(_ status: DIMSEStatus, _ kind: DIMSEStatus.Kind) {
        #expect(status.kind == kind)
    }

    @Test func sharedCodes() {
        #expect(DIMSEStatus.subOperationsCompleteWithFailures == .coercionOfDataElements)
        #expect(DIMSEStatus.identifierDoesNotMatchSOPClass.rawValue == 0xA900)
        #expect(DIMSEStatus.pending.description == "0xFF00")
    }
}
