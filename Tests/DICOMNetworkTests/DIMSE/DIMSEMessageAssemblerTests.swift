import NIOCore
import Testing

import DICOMNetwork

private func pdv(_ context: UInt8, command: Bool, last: Bool, _ data: ByteBuffer) -> PresentationDataValue {
    PresentationDataValue(contextID: context, isCommand: command, isLast: last, data: data)
}

private let storeRQ = CStoreRQ(messageID: 1, affectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", affectedSOPInstanceUID: "1.2.3")

@Suite struct DIMSEMessageAssemblerTests {
    @Test func fragmentedCommandThenStreamedData() throws {
        var assembler = DIMSEMessageAssembler()
        let command = storeRQ.commandSet.encoded()
        let fragments = PDataTF.fragments(of: command, contextID: 3, isCommand: true, maximumPDULength: 20)
        #expect(fragments.count > 3)
        var events: [DIMSEAssemblyEvent] = []
        for fragment in fragments { events += try assembler.receive(fragment) }
        #expect(events == [.command(contextID: 3, storeRQ.commandSet)])
        #expect(!assembler.isIdle)

        let first = try assembler.receive(pdv(3, command: false, last: false, ByteBuffer(bytes: [1, 2])))
        #expect(first == [.dataFragment(contextID: 3, ByteBuffer(bytes: [1, 2]), isLast: false)])
        let last = try assembler.receive(pdv(3, command: false, last: true, ByteBuffer(bytes: [3])))
        #expect(last == [.dataFragment(contextID: 3, ByteBuffer(bytes: [3]), isLast: true)])
        #expect(assembler.isIdle)

        // Next message: an echo without data set.
        let echo = try assembler.receive(pdv(1, command: true, last: true, CEchoRQ(messageID: 2).commandSet.encoded()))
        #expect(echo == [.command(contextID: 1, CEchoRQ(messageID: 2).commandSet)])
        #expect(assembler.isIdle)
    }

    private func expectError(_ code: DIMSEAssemblyError.Code, _ steps: [PresentationDataValue], maximum: Int = 65536) {
        var assembler = DIMSEMessageAssembler(maximumCommandLength: maximum)
        do {
            for step in steps { _ = try assembler.receive(step) }
            Issue.record("expected \(code)")
        } catch {
            #expect(error.code == code)
        }
    }

    @Test func dataWithoutCommand() {
        expectError(.unexpectedData, [pdv(1, command: false, last: true, ByteBuffer(bytes: [1]))])
        // After a command without data set.
        expectError(.unexpectedData, [
            pdv(1, command: true, last: true, CEchoRQ(messageID: 1).commandSet.encoded()),
            pdv(1, command: false, last: true, ByteBuffer(bytes: [1])),
        ])
        // While the command is incomplete.
        expectError(.unexpectedData, [
            pdv(1, command: true, last: false, ByteBuffer(bytes: [0, 0])),
            pdv(1, command: false, last: true, ByteBuffer(bytes: [1])),
        ])
    }

    @Test func contextChangeMidMessage() {
        let command = storeRQ.commandSet.encoded()
        expectError(.contextIDChanged, [
            pdv(1, command: true, last: false, command.getSlice(at: 0, length: 10)!),
            pdv(3, command: true, last: true, command.getSlice(at: 10, length: command.readableBytes - 10)!),
        ])
        expectError(.contextIDChanged, [
            pdv(1, command: true, last: true, command),
            pdv(3, command: false, last: true, ByteBuffer(bytes: [1])),
        ])
    }

    @Test func newCommandWhileDataSetExpected() {
        let command = storeRQ.commandSet.encoded()
        expectError(.commandWhileDataSetExpected, [
            pdv(1, command: true, last: true, command),
            pdv(1, command: true, last: true, command),
        ])
    }

    @Test func commandAfterDataBegan() {
        let command = storeRQ.commandSet.encoded()
        expectError(.commandAfterData, [
            pdv(1, command: true, last: true, command),
            pdv(1, command: false, last: false, ByteBuffer(bytes: [1])),
            pdv(1, command: true, last: true, command),
        ])
    }

    @Test func commandTooLarge() {
        expectError(.commandTooLarge, [
            pdv(1, command: true, last: false, ByteBuffer(repeating: 0, count: 60)),
            pdv(1, command: true, last: false, ByteBuffer(repeating: 0, count: 60)),
        ], maximum: 100)
    }

    @Test func invalidCommandSet() {
        expectError(.invalidCommandSet, [pdv(1, command: true, last: true, ByteBuffer(bytes: [8, 0, 0, 0, 0, 0, 0, 0]))])
    }
}
