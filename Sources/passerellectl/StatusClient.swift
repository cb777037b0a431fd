import Foundation
import Gateway

#if canImport(Glibc)
import Glibc
#endif

/// Sends one request line to the daemon's status socket and reads one answer line.
struct StatusClient {
    let path: String
    var timeout: TimeInterval = 10

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func send(_ request: StatusRequest) throws -> [String: Any] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var seconds = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            throw Failure(description: "cannot reach passerelled at \(path): \(String(cString: strerror(errno)))"
                          + " (is it running? is this the right --config?)")
        }
        let line = Array((request.line + "\n").utf8)
        guard line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count else {
            throw Failure(description: "write to \(path) failed")
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !received.contains(UInt8(ascii: "\n")) {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else {
                throw Failure(description: count == 0 ? "passerelled closed the connection" : "no answer from passerelled within \(Int(timeout)) s")
            }
            received += chunk[..<count]
        }
        let data = Data(received.prefix { $0 != UInt8(ascii: "\n") })
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "unreadable answer from passerelled")
        }
        if object["ok"] as? Bool != true {
            let error = object["error"] as? [String: Any]
            throw Failure(description: "\(error?["code"] ?? "error"): \(error?["message"] ?? "request failed")")
        }
        return object
    }
}
