import Testing

@testable import DICOMNetwork

@Suite struct SubOperationTallyTests {
    @Test func countsRemainingAndOutcomes() {
        var tally = SubOperationTally(total: 4)
        #expect(tally.counts == SubOperationCounts(remaining: 4))
        tally.record(.completed)
        tally.record(.warning)
        tally.record(.failed(sopInstanceUID: "1.2.3", reason: "1.2.3: C-STORE A700"))
        #expect(tally.counts == SubOperationCounts(remaining: 1, completed: 1, failed: 1, warning: 1))
        tally.record(.failed(sopInstanceUID: "", reason: "series 9: fewer instances than the hub counted"))
        #expect(tally.counts.remaining == 0)
        #expect(tally.failedSOPInstanceUIDs == ["1.2.3"])  // an unidentified instance is counted, not listed
        #expect(tally.firstFailure == "1.2.3: C-STORE A700")
        #expect(tally.finalStatus == .subOperationsCompleteWithFailures)
    }

    @Test(arguments: [
        ([SubOperationTally.Outcome](), DIMSEStatus.success),
        ([.completed, .completed], .success),
        ([.warning], .subOperationsCompleteWithFailures),
        ([.failed(sopInstanceUID: "1", reason: nil)], .refusedOutOfResourcesSubOps),
        ([.completed, .failed(sopInstanceUID: "1", reason: nil)], .subOperationsCompleteWithFailures),
    ])
    func finalStatus(_ outcomes: [SubOperationTally.Outcome], _ expected: DIMSEStatus) {
        var tally = SubOperationTally(total: outcomes.count)
        for outcome in outcomes { tally.record(outcome) }
        #expect(tally.finalStatus == expected)
    }

    @Test func theFailedListIsCutToFitOneUIValue() {
        var tally = SubOperationTally(total: 2000)
        let uid = "1.2.826.0.1.3680043.10.1." + String(repeating: "9", count: 38)  // 64 characters
        for index in 0..<2000 { tally.record(.failed(sopInstanceUID: "\(uid)\(index % 10)", reason: nil)) }
        let listed = tally.failedSOPInstanceUIDList
        #expect(listed.count < 2000)
        #expect(listed.reduce(0) { $0 + $1.utf8.count + 1 } < 65_000)
        #expect(listed == Array(tally.failedSOPInstanceUIDs.prefix(listed.count)))
    }
}
