import NIOCore
import Testing

import DICOMNetwork

@Suite struct PDataTFFragmentsTests {
    @Test(arguments: [UInt32(8), 16, 100, 16384, 0])
    func fragmentsRespectTheMaximum(maximum: UInt32) {
        let message = ByteBuffer(bytes: (0..<50_000).map { UInt8(truncatingIfNeeded: $0) })
        let fragments = PDataTF.fragments(of: message, contextID: 3, isCommand: false, maximumPDULength: maximum)
        let limit = maximum == 0 ? PDataTF.defaultMaximumPDULengthForUnlimited : maximum
        var reassembled = ByteBuffer()
        for (index, fragment) in fragments.enumerated() {
            #expect(fragment.values.count == 1)
            let pdv = fragment.values[0]
            #expect(pdv.contextID == 3)
            #expect(!pdv.isCommand)
            #expect(pdv.isLast == (index == fragments.count - 1))
            var encoded = ByteBuffer()
            PDU.pDataTF(fragment).write(into: &encoded)
            #expect(encoded.readableBytes - 6 <= Int(limit))
            var data = pdv.data
            reassembled.writeBuffer(&data)
        }
        #expect(reassembled == message)
    }

    @Test func emptyMessageIsOneLastPDV() {
        let fragments = PDataTF.fragments(of: ByteBuffer(), contextID: 1, isCommand: true, maximumPDULength: 16384)
        #expect(fragments.count == 1)
        #expect(fragments.first?.values.first?.isLast == true)
        #expect(fragments.first?.values.first?.isCommand == true)
        #expect(fragments.first?.values.first?.data.readableBytes == 0)
    }

    @Test func exactMultipleProducesNoEmptyTail() {
        let message = ByteBuffer(repeating: 1, count: 100)
        let fragments = PDataTF.fragments(of: message, contextID: 1, isCommand: false, maximumPDULength: 56)
        #expect(fragments.count == 2)
        #expect(fragments.map { $0.values[0].data.readableBytes } == [50, 50])
    }

    @Test func tinyMaximumStillMakesProgress() {
        let message = ByteBuffer(repeating: 1, count: 10)
        let fragments = PDataTF.fragments(of: message, contextID: 1, isCommand: false, maximumPDULength: 1)
        #expect(fragments.count == 5)
    }
}
