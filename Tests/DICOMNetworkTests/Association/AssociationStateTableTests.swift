import NIOCore
import Testing

import DICOMNetwork

/// PS3.8 Table 9-10, typed in again from the standard: row = event (Evt1…Evt19),
/// column = state (Sta1…Sta13), "" = blank cell.
private let standardTable: [[String]] = [
    /* Evt1  */ ["AE-1", "", "", "", "", "", "", "", "", "", "", "", ""],
    /* Evt2  */ ["", "", "", "AE-2", "", "", "", "", "", "", "", "", ""],
    /* Evt3  */ ["", "AA-1", "AA-8", "", "AE-3", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"],
    /* Evt4  */ ["", "AA-1", "AA-8", "", "AE-4", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"],
    /* Evt5  */ ["AE-5", "", "", "", "", "", "", "", "", "", "", "", ""],
    /* Evt6  */ ["", "AE-6", "AA-8", "", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-7"],
    /* Evt7  */ ["", "", "AE-7", "", "", "", "", "", "", "", "", "", ""],
    /* Evt8  */ ["", "", "AE-8", "", "", "", "", "", "", "", "", "", ""],
    /* Evt9  */ ["", "", "", "", "", "DT-1", "", "AR-7", "", "", "", "", ""],
    /* Evt10 */ ["", "AA-1", "AA-8", "", "AA-8", "DT-2", "AR-6", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"],
    /* Evt11 */ ["", "", "", "", "", "AR-1", "", "", "", "", "", "", ""],
    /* Evt12 */ ["", "AA-1", "AA-8", "", "AA-8", "AR-2", "AR-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"],
    /* Evt13 */ ["", "AA-1", "AA-8", "", "AA-8", "AA-8", "AR-3", "AA-8", "AA-8", "AR-10", "AR-3", "AA-8", "AA-6"],
    /* Evt14 */ ["", "", "", "", "", "", "", "AR-4", "AR-9", "", "", "AR-4", ""],
    /* Evt15 */ ["", "", "AA-1", "AA-2", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", ""],
    /* Evt16 */ ["", "AA-2", "AA-3", "", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-2"],
    /* Evt17 */ ["", "AA-5", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AR-5"],
    /* Evt18 */ ["", "AA-2", "", "", "", "", "", "", "", "", "", "", "AA-2"],
    /* Evt19 */ ["", "AA-1", "AA-8", "", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-7"],
]

struct Cell: Sendable, CustomTestStringConvertible {
    var state: Int
    var event: Int
    var testDescription: String { "Sta\(state)+Evt\(event)" }
}

private let allCells: [Cell] = (1...19).flatMap { event in (1...13).map { Cell(state: $0, event: event) } }

private let userAbort = AAbort(source: .serviceUser, reason: .notSpecified)
private let peerAbort = AAbort(source: .serviceProvider, reason: .unrecognizedPDU)
private let decodingError = PDUDecodingError(code: .invalidItemLength, message: "test", abortReason: .invalidPDUParameterValue)

/// A representative event of each kind.
private func sampleEvent(_ number: Int) -> AssociationEvent {
    switch number {
    case 1: .associateRequestPrimitive(Fixtures.associateRQ)
    case 2: .transportConnectConfirm
    case 3: .associateACReceived(Fixtures.associateAC)
    case 4: .associateRJReceived(Fixtures.associateRJ)
    case 5: .transportConnectIndication
    case 6: .associateRQReceived(Fixtures.associateRQ)
    case 7: .associateACPrimitive(Fixtures.associateAC)
    case 8: .associateRJPrimitive(Fixtures.associateRJ)
    case 9: .pDataRequestPrimitive(Fixtures.pData)
    case 10: .pDataTFReceived(Fixtures.pData)
    case 11: .releaseRequestPrimitive
    case 12: .releaseRQReceived
    case 13: .releaseRPReceived
    case 14: .releaseResponsePrimitive
    case 15: .abortRequestPrimitive(userAbort)
    case 16: .abortReceived(peerAbort)
    case 17: .transportClosed
    case 18: .artimExpired
    default: .invalidPDUReceived(decodingError)
    }
}

/// The role a machine has in each state (collision states imply it).
private func role(in state: Int) -> AssociationStateMachine.Role? {
    switch state {
    case 1: nil
    case 2, 3, 10, 12: .acceptor
    default: .requestor
    }
}

/// The effect of each action, from the descriptions of PS3.8 Tables 9-6…9-9.
private func expectedEffect(of action: String, state: Int, event: Int) -> (next: Int, actions: [AssociationAction]) {
    let providerAbortReason: AAbort.Reason = event == 19 ? .invalidPDUParameterValue : .unexpectedPDU
    let providerAbort = AAbort(source: .serviceProvider, reason: providerAbortReason)
    switch action {
    case "AE-1": return (4, [.openTransport])
    case "AE-2": return (5, [.send(.associateRQ(Fixtures.associateRQ))])
    case "AE-3": return (6, [.indicateAssociateAC(Fixtures.associateAC)])
    case "AE-4": return (1, [.indicateAssociateRJ(Fixtures.associateRJ), .closeTransport])
    case "AE-5": return (2, [.startARTIM])
    case "AE-6": return (3, [.stopARTIM, .indicateAssociateRQ(Fixtures.associateRQ)])
    case "AE-7": return (6, [.send(.associateAC(Fixtures.associateAC))])
    case "AE-8": return (13, [.send(.associateRJ(Fixtures.associateRJ)), .startARTIM])
    case "DT-1": return (6, [.send(.pDataTF(Fixtures.pData))])
    case "DT-2": return (6, [.indicatePData(Fixtures.pData)])
    case "AR-1": return (7, [.send(.releaseRQ)])
    case "AR-2": return (8, [.indicateReleaseRQ])
    case "AR-3": return (1, [.indicateReleaseConfirmed, .closeTransport])
    case "AR-4": return (13, [.send(.releaseRP), .startARTIM])
    case "AR-5": return (1, [.stopARTIM])
    case "AR-6": return (7, [.indicatePData(Fixtures.pData)])
    case "AR-7": return (8, [.send(.pDataTF(Fixtures.pData))])
    case "AR-8": return (role(in: state) == .requestor ? 9 : 10, [.indicateReleaseRQ])
    case "AR-9": return (11, [.send(.releaseRP)])
    case "AR-10": return (12, [.indicateReleaseConfirmed])
    case "AA-1": return (13, [.send(.abort(event == 15 ? userAbort : providerAbort)), .startARTIM])
    case "AA-2": return (1, [.stopARTIM, .closeTransport])
    case "AA-3": return (1, [.indicateAbort(.peerAborted(peerAbort)), .closeTransport])
    case "AA-4": return (1, [.indicateAbort(.transportClosed)])
    case "AA-5": return (1, [.stopARTIM])
    case "AA-6": return (13, [])
    case "AA-7": return (13, [.send(.abort(providerAbort))])
    case "AA-8": return (13, [.send(.abort(providerAbort)), .indicateAbort(.protocolError(providerAbort)), .startARTIM])
    default:
        return (
            state,
            [.eventNotAllowed(AssociationEventID(rawValue: event)!, in: AssociationStateID(rawValue: state)!)]
        )
    }
}

@Suite struct AssociationStateTableTests {
    @Test(arguments: allCells)
    func tableCellMatchesStandard(_ cell: Cell) throws {
        let expected = standardTable[cell.event - 1][cell.state - 1]
        let state = try #require(AssociationStateID(rawValue: cell.state))
        let event = try #require(AssociationEventID(rawValue: cell.event))
        #expect(AssociationStateTable.action(for: event, in: state)?.rawValue ?? "" == expected)
    }

    @Test(arguments: allCells)
    func machineExecutesCell(_ cell: Cell) throws {
        let expected = standardTable[cell.event - 1][cell.state - 1]
        let state = try #require(AssociationStateID(rawValue: cell.state))
        var machine = AssociationStateMachine(
            state: state, role: role(in: cell.state), pendingRequest: cell.state == 4 ? Fixtures.associateRQ : nil
        )
        let actions = machine.handle(sampleEvent(cell.event))
        let effect = expectedEffect(of: expected, state: cell.state, event: cell.event)
        #expect(machine.lastActionID?.rawValue ?? "" == expected)
        #expect(machine.state.rawValue == effect.next)
        #expect(actions == effect.actions)
    }

    @Test func everyEventHasACaseInTheTable() {
        #expect(AssociationStateID.allCases.count == 13)
        #expect(AssociationEventID.allCases.count == 19)
        let used = Set(AssociationStateTable.cells.values)
        #expect(used == Set(AssociationActionID.allCases))
    }
}
