import AsyncHTTPClient
import DICOMCore
import Foundation
import Logging
import NIOCore

/// A DICOMweb origin server (PS3.18): STOW-RS, QIDO-RS and WADO-RS under one base URL.
///
/// Errors are `DICOMwebError` with a `kind` for the caller's policy. Call `shutdown()` before
/// dropping the client: AsyncHTTPClient traps (fatalError) in a client released without it.
public final class DICOMwebClient: Sendable {
    public let baseURL: URL
    let http: HTTPClient
    let bearerToken: String?
    let timeouts: DICOMwebTimeouts
    let logger: Logger

    /// Largest STOW-RS / QIDO-RS response body read into memory.
    public static let maximumResponseBytes = 32 * 1024 * 1024

    public init(baseURL: URL, tls: TLSSettings? = nil, bearerToken: String? = nil,
                timeouts: DICOMwebTimeouts = DICOMwebTimeouts(),
                eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup,
                logger: Logger = Logger(label: "passerelle.dicomweb")) throws(DICOMwebError) {
        guard let scheme = baseURL.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = baseURL.host, !host.isEmpty else {
            throw DICOMwebError(kind: .configuration, code: .invalidURL, url: baseURL.absoluteString,
                                message: "DICOMweb base URL must be http:// or https:// with a host")
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(timeouts.connect),
                           read: TimeAmount(timeouts.read)))
        // A refused connection or a failed TLS handshake fails the request at once: the
        // caller has its own backoff and must see the destination as failing, not waiting.
        configuration.connectionPool.retryConnectionEstablishment = false
        if let tls {
            for path in [tls.caFile, tls.certificateFile, tls.privateKeyFile].compactMap({ $0 })
            where access(path, R_OK) != 0 {
                throw DICOMwebError(kind: .configuration, code: .tls, url: baseURL.absoluteString,
                                    message: "TLS file \(path) is not readable: \(String(cString: strerror(errno)))")
            }
            if (tls.certificateFile == nil) != (tls.privateKeyFile == nil) {
                throw DICOMwebError(kind: .configuration, code: .tls, url: baseURL.absoluteString,
                                    message: "client certificate and client key go together")
            }
            // NIOSSL's TLSConfiguration, reached through AsyncHTTPClient's configuration.
            configuration.tlsConfiguration = .makeClientConfiguration()
            if let ca = tls.caFile { configuration.tlsConfiguration?.trustRoots = .file(ca) }
            if let certificate = tls.certificateFile, let key = tls.privateKeyFile {
                // Read as PEM here: NIOSSL's `.file` takes a `.key` file for DER.
                do {
                    let blocks = try DICOMwebClient.pemCertificates(certificate)
                    guard !blocks.isEmpty else {
                        throw DICOMwebError(kind: .configuration, code: .tls, url: baseURL.absoluteString,
                                            message: "no PEM certificate in \(certificate)")
                    }
                    configuration.tlsConfiguration?.certificateChain = try blocks.map {
                        .certificate(try .init(bytes: Array($0.utf8), format: .pem))
                    }
                } catch let error as DICOMwebError {
                    throw error
                } catch {
                    throw DICOMwebError(kind: .configuration, code: .tls, url: baseURL.absoluteString,
                                        message: "cannot load the PEM certificate chain \(certificate): \(error)")
                }
                do {
                    configuration.tlsConfiguration?.privateKey = .privateKey(try .init(file: key, format: .pem))
                } catch {
                    throw DICOMwebError(kind: .configuration, code: .tls, url: baseURL.absoluteString,
                                        message: "cannot load the PEM private key \(key): \(error)")
                }
            }
        }
        var base = baseURL
        if !base.absoluteString.hasSuffix("/") { base = URL(string: base.absoluteString + "/") ?? base }
        self.baseURL = base
        self.http = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration,
                               backgroundActivityLogger: logger)
        self.bearerToken = bearerToken
        self.timeouts = timeouts
        self.logger = logger
    }

    /// The `-----BEGIN CERTIFICATE-----` blocks of a PEM file, in order (leaf first).
    static func pemCertificates(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
        var blocks: [String] = []
        var rest = text[...]
        while let start = rest.range(of: begin), let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) {
            blocks.append(String(rest[start.lowerBound..<stop.upperBound]) + "\n")
            rest = rest[stop.upperBound...]
        }
        return blocks
    }

    /// Closes the connections; the client is unusable afterwards.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// `base` + `path` (path relative, may carry a query).
    func url(_ path: String) -> String { baseURL.absoluteString + path }

    func request(_ url: String, accept: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "Passerelle")
        if let bearerToken { request.headers.add(name: "Authorization", value: "Bearer \(bearerToken)") }
        return request
    }

    func execute(_ request: HTTPClientRequest) async throws(DICOMwebError) -> HTTPClientResponse {
        do {
            return try await http.execute(request, timeout: TimeAmount(timeouts.request), logger: logger)
        } catch {
            throw DICOMwebClient.transportError(error, url: request.url)
        }
    }

    func collect(_ response: HTTPClientResponse, url: String) async throws(DICOMwebError) -> ByteBuffer {
        do {
            return try await response.body.collect(upTo: DICOMwebClient.maximumResponseBytes)
        } catch let error as DICOMwebError {
            throw error
        } catch {
            if String(describing: error).contains("TooManyBytes") || String(reflecting: type(of: error)).contains("TooManyBytes") {
                throw DICOMwebError(kind: .permanent, code: .responseTooLarge, url: url,
                                    status: Int(response.status.code),
                                    message: "response larger than \(DICOMwebClient.maximumResponseBytes) bytes")
            }
            throw DICOMwebClient.transportError(error, url: url)
        }
    }

    // MARK: STOW-RS

    /// Stores Part-10 files in one STOW-RS request (`POST {base}/studies`, PS3.18 §10.5), the
    /// body streamed from disk. Returns a result for each given SOP Instance UID (and any other
    /// the server named). Throws for a status or transport failure of the whole request.
    public func store(files: [(path: String, sopInstanceUID: String)],
                      chunkSize: Int = STOWRequestBody.defaultChunkSize) async throws(DICOMwebError)
        -> [String: STOWInstanceResult]
    {
        guard !files.isEmpty else { return [:] }
        let body = try STOWRequestBody(files: files.map(\.path), chunkSize: chunkSize)
        return try await store(body, sopInstanceUIDs: files.map(\.sopInstanceUID))
    }

    /// Stores a prepared body (parts may carry splices); `pace` is awaited with each chunk's
    /// size before it is sent (a bandwidth cap). `sopInstanceUIDs` are the parts' instances.
    public func store(_ body: STOWRequestBody, sopInstanceUIDs: [String],
                      pace: (@Sendable (Int) async throws -> Void)? = nil) async throws(DICOMwebError)
        -> [String: STOWInstanceResult]
    {
        guard !sopInstanceUIDs.isEmpty else { return [:] }
        let url = url("studies")
        var request = request(url, accept: "application/dicom+json")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: body.contentType)
        if let pace {
            request.body = .stream(PacedSequence(base: body, pace: pace), length: .known(body.contentLength))
        } else {
            request.body = .stream(body, length: .known(body.contentLength))
        }
        let response = try await execute(request)
        let status = Int(response.status.code)
        let bytes = try await collect(response, url: url)
        return try STOWResponse.evaluate(status: status, contentType: response.headers.first(name: "Content-Type"),
                                         body: bytes, url: url, requested: sopInstanceUIDs)
    }

    // MARK: QIDO-RS

    /// SOP Instance UID → SOP Class UID of every instance the server has in a study
    /// (`GET {base}/studies/{uid}/instances`, paged with `limit`/`offset`); empty when unknown.
    public func instances(inStudy studyInstanceUID: String, pageSize: Int = 1000) async throws(DICOMwebError)
        -> [String: String]
    {
        var query = QIDOInstancesQuery(studyInstanceUID: studyInstanceUID, pageSize: pageSize)
        while !query.isComplete {
            let url = url(query.nextPath)
            let response = try await execute(request(url, accept: "application/dicom+json"))
            let bytes = try await collect(response, url: url)
            try query.pageReceived(status: Int(response.status.code),
                                   contentType: response.headers.first(name: "Content-Type"), body: bytes, url: url)
        }
        return query.instances
    }

    // MARK: WADO-RS

    /// Retrieves one instance (`GET {base}/studies/{s}/series/{se}/instances/{i}`, PS3.18
    /// §10.4) as `multipart/related; type="application/dicom"` and streams the first part's
    /// bytes (a Part-10 file) into `path` (created or truncated; written to `path.partial`
    /// then renamed, so `path` is whole or absent). `transferSyntax` "*" asks for the stored
    /// one, unchanged; `nil` leaves the choice to the server (Explicit VR Little Endian).
    /// Returns the number of bytes written. Memory is bounded whatever the instance size.
    @discardableResult
    public func retrieveInstance(study: String, series: String, instance: String, to path: String,
                                 transferSyntax: String? = "*") async throws(DICOMwebError) -> Int64 {
        let url = url("studies/\(study)/series/\(series)/instances/\(instance)")
        let (response, boundary) = try await retrieve(url, transferSyntax: transferSyntax)
        let status = Int(response.status.code)
        let partial = path + ".partial"
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DICOMwebError(kind: .permanent, code: .localFile, url: url,
                                message: "cannot create \(partial): \(String(cString: strerror(errno)))")
        }
        var closed = false
        defer {
            if !closed { close(fd); unlink(partial) }
        }
        var parser = MultipartParser(boundary: boundary)
        var parts = 0
        var written: Int64 = 0
        do {
            for try await chunk in response.body {
                for event in try parser.feed(chunk) {
                    switch event {
                    case .partStart: parts += 1
                    case .body(let bytes) where parts == 1:
                        try DICOMwebClient.writeAll(fd, bytes, path: partial)
                        written += Int64(bytes.readableBytes)
                    case .body, .partEnd: break
                    }
                }
            }
            try parser.finish()
        } catch let error as MultipartParser.Error {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                message: error.description)
        } catch {
            throw DICOMwebClient.transportError(error, url: url)
        }
        guard parts >= 1 else {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                message: "multipart response without a part")
        }
        closed = true
        guard close(fd) == 0, rename(partial, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(partial)
            throw DICOMwebError(kind: .permanent, code: .localFile, url: url, message: "cannot write \(path): \(message)")
        }
        return written
    }

    /// Retrieves every instance of a study or series (`path` = `studies/{s}` or
    /// `studies/{s}/series/{se}`, PS3.18 §10.4) as one `multipart/related` response, in the
    /// stored transfer syntax: each part is streamed into a new file `directory/part-…` and
    /// handed to `received` once whole (it takes the file over). One request rather than one
    /// per instance: hubs serve a series far faster so. Returns the number of parts; an error
    /// mid-stream keeps what was handed over. Memory is bounded whatever the sizes.
    public func retrieveInstances(_ path: String, into directory: String,
                                  received: @Sendable (_ path: String, _ size: Int64) async -> Void)
        async throws(DICOMwebError) -> Int
    {
        let url = url(path)
        let (response, boundary) = try await retrieve(url, transferSyntax: "*")
        let status = Int(response.status.code)
        let prefix = "\(directory)/part-\(UUID().uuidString)-"
        var parser = MultipartParser(boundary: boundary)
        var parts = 0
        var fd: Int32 = -1
        var current = ""
        var written: Int64 = 0
        defer {
            if fd >= 0 { close(fd); unlink(current) }
        }
        do {
            for try await chunk in response.body {
                for event in try parser.feed(chunk) {
                    switch event {
                    case .partStart:
                        parts += 1
                        current = prefix + "\(parts)"
                        fd = open(current, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                        written = 0
                        guard fd >= 0 else {
                            throw DICOMwebError(kind: .permanent, code: .localFile, url: url,
                                                message: "cannot create \(current): \(String(cString: strerror(errno)))")
                        }
                    case .body(let bytes):
                        guard fd >= 0 else { continue }
                        try DICOMwebClient.writeAll(fd, bytes, path: current)
                        written += Int64(bytes.readableBytes)
                    case .partEnd:
                        guard fd >= 0 else { continue }
                        close(fd)
                        fd = -1
                        await received(current, written)
                    }
                }
            }
            try parser.finish()
        } catch let error as MultipartParser.Error {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                message: error.description)
        } catch {
            throw DICOMwebClient.transportError(error, url: url)
        }
        return parts
    }

    /// A WADO-RS GET accepting `multipart/related; type="application/dicom"`: the response
    /// once its status is 200 and it has a boundary, else the error.
    func retrieve(_ url: String, transferSyntax: String?) async throws(DICOMwebError)
        -> (response: HTTPClientResponse, boundary: String)
    {
        var accept = "multipart/related; type=\"application/dicom\""
        if let transferSyntax { accept += "; transfer-syntax=\(transferSyntax)" }
        let response = try await execute(request(url, accept: accept))
        let status = Int(response.status.code)
        guard status == 200 else {
            let body = (try? await response.body.collect(upTo: 64 * 1024)) ?? ByteBuffer()
            throw DICOMwebError.forStatus(status, url: url, detail: STOWResponse.bodySnippet(body))
        }
        let contentType = response.headers.first(name: "Content-Type") ?? ""
        guard contentType.lowercased().hasPrefix("multipart/related"),
              let boundary = MultipartParser.boundary(fromContentType: contentType) else {
            throw DICOMwebError(kind: .permanent, code: .invalidResponse, url: url, status: status,
                                message: "expected multipart/related with a boundary, got \(contentType.isEmpty ? "no Content-Type" : contentType)")
        }
        return (response, boundary)
    }

    static func writeAll(_ fd: Int32, _ bytes: ByteBuffer, path: String) throws(DICOMwebError) {
        let failure = FileDescriptorWriting.writeAll(fd, bytes)
        if failure != 0 {
            throw DICOMwebError(kind: .permanent, code: .localFile, url: nil,
                                message: "cannot write \(path): \(String(cString: strerror(failure)))")
        }
    }

    // MARK: Errors

    /// Classifies an error thrown by the HTTP client (no HTTP status was received).
    static func transportError(_ error: any Error, url: String?) -> DICOMwebError {
        if let error = error as? DICOMwebError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .writeTimeout, .deadlineExceeded, .getConnectionFromPoolTimeout:
                return DICOMwebError(kind: .retryable, code: .timeout, url: url, message: "timed out (\(error))")
            case .tlsHandshakeTimeout:
                return DICOMwebError(kind: .retryable, code: .timeout, url: url, message: "TLS handshake timed out")
            case .invalidURL, .emptyHost, .emptyScheme:
                return DICOMwebError(kind: .configuration, code: .invalidURL, url: url, message: "invalid URL (\(error))")
            case .remoteConnectionClosed:
                // Often a pooled keep-alive connection the server had just closed: worth one
                // immediate retry on a new connection (the uploader does it).
                return DICOMwebError(kind: .retryable, code: .connectionClosed, url: url,
                                     message: "the server closed the connection (\(error))")
            case .redirectLimitReached, .redirectCycleDetected:
                return DICOMwebError(kind: .configuration, code: .httpStatus, url: url, message: "redirected (\(error))")
            default:
                if String(describing: error).contains("unsupportedScheme") {
                    return DICOMwebError(kind: .configuration, code: .invalidURL, url: url, message: "\(error)")
                }
                return DICOMwebError(kind: .retryable, code: .connection, url: url, message: "HTTP failure (\(error))")
            }
        }
        // NIOSSL / BoringSSL errors: certificates, keys, CA, handshake — fix the configuration.
        let typeName = String(reflecting: type(of: error))
        if typeName.hasPrefix("NIOSSL.") || typeName.contains("BoringSSL") {
            return DICOMwebError(kind: .configuration, code: .tls, url: url, message: "TLS failure: \(error)")
        }
        if error is CancellationError {
            return DICOMwebError(kind: .retryable, code: .connection, url: url, message: "cancelled")
        }
        // Refused, reset, unreachable, DNS (NIOConnectionError, IOError, ChannelError): try later.
        return DICOMwebError(kind: .retryable, code: .connection, url: url, message: "connection failed: \(error)")
    }
}

/// Byte chunks of `base`, each released by `pace(count)` first.
struct PacedSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let pace: @Sendable (Int) async throws -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let pace: @Sendable (Int) async throws -> Void
        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            try await pace(chunk.readableBytes)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), pace: pace) }
}
