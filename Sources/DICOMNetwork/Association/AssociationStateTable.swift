/// PS3.8 Table 9-10, "DICOM Upper Layer Protocol State Transition Table", as data.
///
/// Each entry is one cell: `(state, event) → action`. A missing entry is a blank cell of the
/// standard (the event cannot occur in that state, or is a local primitive issued out of
/// turn); the machine answers those with ``AssociationAction/eventNotAllowed(_:in:)``.
public enum AssociationStateTable {
    public struct Key: Sendable, Hashable {
        public var state: AssociationStateID
        public var event: AssociationEventID

        public init(_ state: AssociationStateID, _ event: AssociationEventID) {
            self.state = state
            self.event = event
        }
    }

    /// The action of one cell, `nil` for a blank cell.
    public static func action(for event: AssociationEventID, in state: AssociationStateID) -> AssociationActionID? {
        cells[Key(state, event)]
    }

    /// Builds a row of the table: one event, the action in each listed state.
    private static func row(_ event: Int, _ entries: [(Int, AssociationActionID)]) -> [(Key, AssociationActionID)] {
        entries.compactMap { state, action in
            guard let s = AssociationStateID(rawValue: state), let e = AssociationEventID(rawValue: event) else {
                return nil
            }
            return (Key(s, e), action)
        }
    }

    /// The cells, row by row as printed in Table 9-10 (row = event, column = state).
    public static let cells: [Key: AssociationActionID] = {
        var rows: [(Key, AssociationActionID)] = []
        // Evt1 A-ASSOCIATE request (local user): Sta1 AE-1
        rows += row(1, [(1, .ae1)])
        // Evt2 transport connect confirmation: Sta4 AE-2
        rows += row(2, [(4, .ae2)])
        // Evt3 A-ASSOCIATE-AC PDU: Sta2 AA-1, Sta3 AA-8, Sta5 AE-3, Sta6–12 AA-8, Sta13 AA-6
        rows += row(3, [(2, .aa1), (3, .aa8), (5, .ae3)] + (6...12).map { ($0, .aa8) } + [(13, .aa6)])
        // Evt4 A-ASSOCIATE-RJ PDU: Sta2 AA-1, Sta3 AA-8, Sta5 AE-4, Sta6–12 AA-8, Sta13 AA-6
        rows += row(4, [(2, .aa1), (3, .aa8), (5, .ae4)] + (6...12).map { ($0, .aa8) } + [(13, .aa6)])
        // Evt5 transport connection indication: Sta1 AE-5
        rows += row(5, [(1, .ae5)])
        // Evt6 A-ASSOCIATE-RQ PDU: Sta2 AE-6, Sta3 AA-8, Sta5–12 AA-8, Sta13 AA-7
        rows += row(6, [(2, .ae6), (3, .aa8)] + (5...12).map { ($0, .aa8) } + [(13, .aa7)])
        // Evt7 A-ASSOCIATE response (accept): Sta3 AE-7
        rows += row(7, [(3, .ae7)])
        // Evt8 A-ASSOCIATE response (reject): Sta3 AE-8
        rows += row(8, [(3, .ae8)])
        // Evt9 P-DATA request: Sta6 DT-1, Sta8 AR-7
        rows += row(9, [(6, .dt1), (8, .ar7)])
        // Evt10 P-DATA-TF PDU: Sta2 AA-1, Sta3 AA-8, Sta5 AA-8, Sta6 DT-2, Sta7 AR-6, Sta8–12 AA-8, Sta13 AA-6
        rows += row(10, [(2, .aa1), (3, .aa8), (5, .aa8), (6, .dt2), (7, .ar6)] + (8...12).map { ($0, .aa8) } + [(13, .aa6)])
        // Evt11 A-RELEASE request: Sta6 AR-1
        rows += row(11, [(6, .ar1)])
        // Evt12 A-RELEASE-RQ PDU: Sta2 AA-1, Sta3 AA-8, Sta5 AA-8, Sta6 AR-2, Sta7 AR-8, Sta8–12 AA-8, Sta13 AA-6
        rows += row(12, [(2, .aa1), (3, .aa8), (5, .aa8), (6, .ar2), (7, .ar8)] + (8...12).map { ($0, .aa8) } + [(13, .aa6)])
        // Evt13 A-RELEASE-RP PDU: Sta2 AA-1, Sta3 AA-8, Sta5 AA-8, Sta6 AA-8, Sta7 AR-3, Sta8 AA-8, Sta9 AA-8,
        //       Sta10 AR-10, Sta11 AR-3, Sta12 AA-8, Sta13 AA-6
        rows += row(13, [
            (2, .aa1), (3, .aa8), (5, .aa8), (6, .aa8), (7, .ar3), (8, .aa8), (9, .aa8),
            (10, .ar10), (11, .ar3), (12, .aa8), (13, .aa6),
        ])
        // Evt14 A-RELEASE response: Sta8 AR-4, Sta9 AR-9, Sta12 AR-4
        rows += row(14, [(8, .ar4), (9, .ar9), (12, .ar4)])
        // Evt15 A-ABORT request: Sta3 AA-1, Sta4 AA-2, Sta5–12 AA-1
        rows += row(15, [(3, .aa1), (4, .aa2)] + (5...12).map { ($0, .aa1) })
        // Evt16 A-ABORT PDU: Sta2 AA-2, Sta3 AA-3, Sta5–12 AA-3, Sta13 AA-2
        rows += row(16, [(2, .aa2), (3, .aa3)] + (5...12).map { ($0, .aa3) } + [(13, .aa2)])
        // Evt17 transport connection closed: Sta2 AA-5, Sta3–12 AA-4, Sta13 AR-5
        rows += row(17, [(2, .aa5)] + (3...12).map { ($0, .aa4) } + [(13, .ar5)])
        // Evt18 ARTIM timer expired: Sta2 AA-2, Sta13 AA-2
        rows += row(18, [(2, .aa2), (13, .aa2)])
        // Evt19 unrecognised or invalid PDU: Sta2 AA-1, Sta3 AA-8, Sta5–12 AA-8, Sta13 AA-7
        rows += row(19, [(2, .aa1), (3, .aa8)] + (5...12).map { ($0, .aa8) } + [(13, .aa7)])
        return Dictionary(rows, uniquingKeysWith: { first, _ in first })
    }()
}
