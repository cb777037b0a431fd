import DICOMNetwork
import Foundation
import Logging
import NIOCore
import NIOPosix

// ---- passerellectl echo ----
func cliEcho(host: String, port: Int, callingAET: String, calledAET: String, timeout: Int) async throws -> Int32 {
    let timeouts = DICOMClient.Timeouts(connect: .seconds(Int64(timeout)), association: .seconds(Int64(timeout)),
                                        dimse: .seconds(Int64(timeout)))
    do {
        let association = try await DICOMClient.connect(
            host: host, port: port, callingAETitle: callingAET, calledAETitle: calledAET,
            presentationContexts: try DICOMClient.presentationContexts(forFiles: []),
            timeouts: timeouts, group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "passerellectl"))
        let status = try await association.echo()
        try await association.release()
        print("C-ECHO \(calledAET)@\(host):\(port): status \(status)")
        return status == .success ? 0 : 1
    } catch {
        FileHandle.standardError.write(Data("passerellectl: \(error)\n".utf8))
        return error.code == .associationRejected ? 3 : 2
    }
}

// ---- passerellectl send ----
func cliSend(host: String, port: Int, callingAET: String, calledAET: String, timeout: Int, files: [String]) async throws -> Int32 {
    let timeouts = DICOMClient.Timeouts(connect: .seconds(Int64(timeout)), association: .seconds(Int64(timeout)),
                                        dimse: .seconds(Int64(timeout)))
    var failures = 0
    do {
        let association = try await DICOMClient.connect(
            host: host, port: port, callingAETitle: callingAET, calledAETitle: calledAET,
            presentationContexts: try DICOMClient.presentationContexts(forFiles: files),
            timeouts: timeouts, group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "passerellectl"))
        for path in files {
            do {
                let result = try await association.store(fileAt: path)
                let comment = result.errorComment.map { " (\($0))" } ?? ""
                print("\(path): \(result.sopInstanceUID) status \(result.status)\(comment)")
                if result.status.kind == .failure { failures += 1 }
            } catch where error.code == .noAcceptedPresentationContext || error.code == .invalidFile {
                // This file only: the association is still usable.
                FileHandle.standardError.write(Data("passerellectl: \(path): \(error)\n".utf8))
                failures += 1
            }
        }
        try await association.release()
    } catch {
        FileHandle.standardError.write(Data("passerellectl: \(error)\n".utf8))
        return error.code == .associationRejected ? 3 : 2
    }
    return failures == 0 ? 0 : 1
}
