import Foundation
import NIOCore

/// A reason the gateway cannot start, worded for the person reading the journal.
public struct GatewayError: Error, CustomStringConvertible {
    public var description: String

    static func cannotListen(host: String, port: Int, _ error: any Error) -> GatewayError {
        GatewayError(description: "cannot listen on \(host):\(port): \(reason(error))"
                     + ((error as? IOError)?.errnoCode == EACCES && port < 1024
                        ? " (ports below 1024 need CAP_NET_BIND_SERVICE)" : ""))
    }

    static func cannotOpenSpool(path: String, _ error: any Error) -> GatewayError {
        GatewayError(description: "cannot open the spool at \(path): \(reason(error))")
    }

    static func cannotStartCommunity(_ error: any Error) -> GatewayError {
        GatewayError(description: "cannot set up the [[community]] search folders: \(reason(error))")
    }

    static func cannotStartAudit(_ error: any Error) -> GatewayError {
        GatewayError(description: "cannot set up the [audit] repository: \(reason(error))")
    }

    static func cannotStartHL7(_ error: any Error) -> GatewayError {
        GatewayError(description: "cannot set up the [hl7] listener (its TLS certificate or key?): \(reason(error))")
    }

    static func cannotStartDICOMTLS(_ error: any Error) -> GatewayError {
        GatewayError(description: "cannot set up the [dicom.tls] listener (its certificate, key or ca?): \(reason(error))")
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}
