import ArgumentParser
import DICOMNetwork
import Foundation
import Logging
import NIOPosix

/// A peer written `AET@HOST:PORT`, as IT teams note them.
struct Peer: ExpressibleByArgument, CustomStringConvertible {
    var aeTitle: String
    var host: String
    var port: Int

    init?(argument: String) {
        guard let at = argument.firstIndex(of: "@"), let colon = argument.lastIndex(of: ":"), at < colon,
              let port = Int(argument[argument.index(after: colon)...]), (1...65_535).contains(port) else { return nil }
        aeTitle = String(argument[..<at])
        host = String(argument[argument.index(after: at)..<colon])
        guard !aeTitle.isEmpty, !host.isEmpty else { return nil }
        self.port = port
    }

    var description: String { "\(aeTitle)@\(host):\(port)" }
}

struct PeerOptions: ParsableArguments {
    @Option(name: .customLong("aet"), help: "Our calling AE title.")
    var callingAETitle = "PASSERELLECTL"
    @Option(help: "Seconds to wait for the connection, the association and each response.")
    var timeout = 30

    var timeouts: DICOMClient.Timeouts {
        DICOMClient.Timeouts(connect: .seconds(Int64(timeout)), association: .seconds(Int64(timeout)),
                             dimse: .seconds(Int64(timeout)))
    }

    func connect(to peer: Peer, files: [String]) async throws(DICOMNetworkError) -> DICOMAssociation {
        // Errors are printed by the command itself, once.
        var logger = Logger(label: "passerellectl")
        logger.logLevel = .critical
        return try await DICOMClient.connect(
            host: peer.host, port: peer.port, callingAETitle: callingAETitle, calledAETitle: peer.aeTitle,
            presentationContexts: try DICOMClient.presentationContexts(forFiles: files),
            timeouts: timeouts, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }
}

/// Exit codes: 0 success, 1 some instance or the echo failed, 2 network or protocol error,
/// 3 association rejected.
private func peerExitCode(for error: DICOMNetworkError) -> ExitCode {
    ExitCode(error.code == .associationRejected ? 3 : 2)
}

struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo", abstract: "Verify a DICOM peer (C-ECHO): `passerellectl echo PACS@10.1.2.3:104`.")
    @Argument(help: "The peer, AET@HOST:PORT.")
    var peer: Peer
    @OptionGroup var options: PeerOptions

    func run() async throws {
        let started = ContinuousClock.now
        do {
            let association = try await options.connect(to: peer, files: [])
            let status = try await association.echo()
            try await association.release()
            print("C-ECHO \(peer): \(status) in \(ContinuousClock.now - started)")
            if status != .success { throw ExitCode(1) }
        } catch let error as DICOMNetworkError {
            FileHandle.standardError.write(Data("passerellectl: C-ECHO \(peer): \(error)\n".utf8))
            throw peerExitCode(for: error)
        }
    }
}

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send DICOM files (C-STORE), as they are: `passerellectl send *.dcm --to PASSERELLE@127.0.0.1:11112`.")
    @Argument(help: "Part-10 files or directories (searched recursively).")
    var paths: [String]
    @Option(help: "The peer, AET@HOST:PORT.")
    var to: Peer
    @OptionGroup var options: PeerOptions

    func run() async throws {
        let files = try Self.expand(paths)
        guard !files.isEmpty else { throw ValidationError("no file to send") }
        var failures = 0
        let association: DICOMAssociation
        do {
            association = try await options.connect(to: to, files: files)
        } catch {
            FileHandle.standardError.write(Data("passerellectl: \(to): \(error)\n".utf8))
            throw peerExitCode(for: error)
        }
        for path in files {
            switch await Self.store(path, on: association) {
            case .success(let result):
                print("\(path): \(result.sopInstanceUID) \(result.status)"
                      + (result.errorComment.map { " (\($0))" } ?? ""))
                if result.status.kind == .failure { failures += 1 }
            case .failure(let error):
                FileHandle.standardError.write(Data("passerellectl: \(path): \(error)\n".utf8))
                failures += 1
                // A file without a fitting context leaves the association usable; anything else ends it.
                guard error.code == .noAcceptedPresentationContext || error.code == .invalidFile else {
                    throw peerExitCode(for: error)
                }
            }
        }
        do {
            try await association.release()
        } catch {
            FileHandle.standardError.write(Data("passerellectl: \(to): \(error)\n".utf8))
        }
        print("\(files.count - failures) of \(files.count) sent to \(to)")
        if failures > 0 { throw ExitCode(1) }
    }

    static func store(_ path: String, on association: DICOMAssociation) async
        -> Result<CStoreResult, DICOMNetworkError> {
        do {
            return .success(try await association.store(fileAt: path))
        } catch {
            return .failure(error)
        }
    }

    static func expand(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ValidationError("\(path): no such file or directory")
            }
            if isDirectory.boolValue {
                let enumerator = FileManager.default.enumerator(atPath: path)
                while let name = enumerator?.nextObject() as? String {
                    let full = (path as NSString).appendingPathComponent(name)
                    var nested: ObjCBool = false
                    if FileManager.default.fileExists(atPath: full, isDirectory: &nested), !nested.boolValue {
                        files.append(full)
                    }
                }
            } else {
                files.append(path)
            }
        }
        return files.sorted()
    }
}
