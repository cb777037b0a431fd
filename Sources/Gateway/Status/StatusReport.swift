import Foundation
import Spool

/// The answer to `status`: what an IT team checks first.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct Listener: Codable, Sendable, Equatable {
        public var aeTitle: String
        public var bind: String
        public var port: Int
    }

    public struct Associations: Codable, Sendable, Equatable {
        public var active: Int
        public var maximum: Int
    }

    public struct Totals: Codable, Sendable, Equatable {
        public var instances: Int
        public var bytes: Int
    }

    public struct SpoolStatus: Codable, Sendable, Equatable {
        public var path: String
        public var studies: Int
        /// Per state: "queued" (current instances waiting for a destination), "superseded".
        public var states: [String: Totals]
        public var freeBytes: UInt64
        public var minimumFreeBytes: UInt64
        /// Receptions are refused (A700) while true.
        public var belowMinimumFree: Bool
    }

    public struct Destination: Codable, Sendable, Equatable {
        public var name: String
        public var url: String
    }

    public var version: String
    public var startedAt: Date
    public var uptimeSeconds: Int
    public var listening: [Listener]
    public var associations: Associations
    public var spool: SpoolStatus
    /// Configured destinations. Upload is not implemented yet: studies wait in the spool.
    public var destinations: [Destination]
}

/// The version shown by `status` and `--version`.
public enum PasserelleVersion {
    public static let current = "0.1.0"
}
