import DICOMCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DICOMNetwork

/// The one file-to-peer streamer of the client's C-STORE and of C-GET sub-operations.
@Suite struct DataSetSenderTests {
    func file(pixelBytes: Int) throws -> (Part10DataSetFile, [UInt8], URL) {
        let directory = try ClientTestSupport.temporaryDirectory("sender")
        let written = try ClientTestSupport.writePart10File(in: directory, sopInstanceUID: "2.25.42", pixelBytes: pixelBytes)
        return (try Part10DataSetFile.open(written.path), written.dataSet, directory)
    }

    /// Sends `file` with 1 KiB fragments and collects the blocks.
    func send(_ file: Part10DataSetFile) async throws(DICOMNetworkError) -> [(ByteBuffer, Bool)] {
        let blocks = NIOLockedValueBox<[(ByteBuffer, Bool)]>([])
        try await DataSetSender.send(file, fragmentLength: 1024, threadPool: .singleton,
                                     eventLoop: MultiThreadedEventLoopGroup.singleton.any()) { bytes, isLast in
            blocks.withLockedValue { $0.append((bytes, isLast)) }
        }
        return blocks.withLockedValue { $0 }
    }

    @Test func blocksAreWholeFragmentsAndTheLastIsMarked() async throws {
        let (file, dataSet, directory) = try file(pixelBytes: 2_500_000)
        defer { try? FileManager.default.removeItem(at: directory) }
        let blocks = try await send(file)
        #expect(blocks.count == 3)  // ~1 MiB each
        #expect(blocks.dropLast().allSatisfy { $0.0.readableBytes == DataSetSender.blockSize(fragmentLength: 1024) && !$0.1 })
        #expect(blocks.last?.1 == true)
        #expect(blocks.flatMap { Array($0.0.readableBytesView) } == dataSet)
    }

    /// A C-CANCEL cancels the retrieval's task while an instance is being sent: the data set
    /// must still go out whole (cutting it short would force an A-ABORT of the association).
    @Test func aCancelledTaskStillSendsTheWholeDataSet() async throws {
        let (file, dataSet, directory) = try file(pixelBytes: 2_500_000)
        defer { try? FileManager.default.removeItem(at: directory) }
        let task = Task { () throws(DICOMNetworkError) -> [(ByteBuffer, Bool)] in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await send(file)
        }
        let blocks = try await task.value
        #expect(blocks.flatMap { Array($0.0.readableBytesView) } == dataSet)
        #expect(blocks.last?.1 == true)
    }

    @Test func anEmptyDataSetIsOneEmptyLastBlock() async throws {
        let (file, _, directory) = try file(pixelBytes: 0)
        defer { try? FileManager.default.removeItem(at: directory) }
        var empty = file
        empty.dataSetLength = 0
        let blocks = try await send(empty)
        #expect(blocks.count == 1 && blocks[0].0.readableBytes == 0 && blocks[0].1)
    }
}
