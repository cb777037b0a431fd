// Target `dimse`: the DIMSE command set parser, alone and behind DIMSEMessageAssembler.
// Input: [mode][…]. Mode even: the rest is one command set. Mode odd: the rest is a sequence
// of PDVs [context ID][control bits][length][bytes], fed to the assembler in order.
import DICOMNetwork
import NIOCore

/// A decoded command set is typed, re-encoded and decoded again to the same value.
func typed(_ commandSet: CommandSet) {
    let reencoded = commandSet.encoded()
    do {
        let again = try CommandSet.decode(reencoded)
        check(again == commandSet, "command set changes through encode → decode")
    } catch {
        check(false, "an encoded command set does not decode: \(error)")
    }
    guard let message = try? DIMSEMessage(commandSet: commandSet) else { return }
    let messageSet = message.commandSet
    check((try? DIMSEMessage(commandSet: messageSet)) == message, "\(message) changes through its command set")
    _ = message.hasDataSet
}

func fuzzOne(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let mode = input.byte()
    if mode & 1 == 0 {
        if let commandSet = try? CommandSet.decode(ByteBuffer(bytes: input.rest())) { typed(commandSet) }
        return
    }
    // A small bound sometimes, so that commandTooLarge is reachable.
    var assembler = DIMSEMessageAssembler(maximumCommandLength: mode & 2 == 0 ? 64 * 1024 : 64)
    while !input.isEmpty {
        let contextID = input.byte() % 4 * 2 + 1
        let control = input.byte()
        let data = input.take(Int(input.byte()))
        let pdv = PresentationDataValue(contextID: contextID, isCommand: control & 1 == 1, isLast: control & 2 == 2,
                                        data: ByteBuffer(bytes: data))
        do {
            for event in try assembler.receive(PDataTF(values: [pdv])) {
                if case .command(_, let commandSet) = event { typed(commandSet) }
            }
        } catch {
            return  // the association is aborted: nothing more is read
        }
    }
    _ = assembler.isIdle
}
