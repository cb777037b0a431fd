import Foundation
import GRDB

/// Retention: which studies may leave the spool (verified wherever they were routed), and their purge.
extension SpoolDatabase {
    /// Studies verified at every destination they were routed to, with nothing unrouted or
    /// pending, oldest verification first; only those verified before `verifiedBefore`
    /// when given.
    public func purgeCandidates(verifiedBefore: Date?, limit: Int = 100) throws -> [PurgeCandidate] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT st.id, st.study_instance_uid, MAX(COALESCE(sd.verified_at, st.last_received_at)) AS verified,
                       (SELECT COALESCE(SUM(i.size), 0) FROM instance i JOIN series se ON se.id = i.series_ref
                        WHERE se.study_ref = st.id)
                FROM study st JOIN study_delivery sd ON sd.study_ref = st.id
                WHERE NOT EXISTS (SELECT 1 FROM study_delivery u WHERE u.study_ref = st.id AND u.verified_at IS NULL
                                  AND (u.withheld IS NULL OR u.withheld = 'consent'))
                  AND NOT EXISTS (SELECT 1 FROM instance i JOIN series se ON se.id = i.series_ref
                                  WHERE se.study_ref = st.id AND i.routed = 0 AND i.revision_state = 'current')
                  AND NOT EXISTS (SELECT 1 FROM delivery d JOIN instance i ON i.id = d.instance_ref
                                  JOIN series se ON se.id = i.series_ref
                                  WHERE se.study_ref = st.id AND d.state = 'in_flight')
                GROUP BY st.id
                HAVING :before IS NULL OR verified <= :before
                ORDER BY verified LIMIT :limit
                """, arguments: ["before": verifiedBefore?.timeIntervalSince1970, "limit": limit]).map {
                PurgeCandidate(studyID: $0[0], studyInstanceUID: $0[1],
                               verifiedAt: Date(timeIntervalSince1970: $0[2]), bytes: $0[3])
            }
        }
    }

    /// Removes a verified study's rows (all revisions) if it is still purgeable, and returns
    /// the file paths no row references any more: the caller unlinks them (a crash before
    /// that leaves unreferenced files, which start-up recovery removes).
    ///
    /// A study withheld from a shared destination by an opposition leaves a `withdrawn` mark
    /// there (unless one exists), so that lifting the opposition later sends it from the archive.
    public func purge(_ candidate: PurgeCandidate, siteIssuer: String = "", now: Date = Date()) throws -> [String] {
        try writer.write { db in
            let stillVerified = try Bool.fetchOne(db, sql: """
                SELECT NOT EXISTS (SELECT 1 FROM study_delivery WHERE study_ref = ? AND verified_at IS NULL
                                   AND (withheld IS NULL OR withheld = 'consent'))
                   AND NOT EXISTS (SELECT 1 FROM instance i JOIN series se ON se.id = i.series_ref
                                   WHERE se.study_ref = ? AND i.routed = 0 AND i.revision_state = 'current')
                """, arguments: [candidate.studyID, candidate.studyID]) ?? false
            guard stillVerified else { return [] }
            let paths = try String.fetchAll(db, sql: """
                SELECT i.file_path FROM instance i JOIN series se ON se.id = i.series_ref WHERE se.study_ref = ?
                """, arguments: [candidate.studyID])
            for destination in try String.fetchAll(db, sql: """
                SELECT destination FROM study_delivery WHERE study_ref = ? AND withheld = 'opposition'
                """, arguments: [candidate.studyID]) {
                if let marked = try queueWithdrawal(studyID: candidate.studyID, destination: destination,
                                                    by: "purge (withheld)", siteIssuer: siteIssuer, now: now, db: db) {
                    try db.execute(sql: "UPDATE withdrawal SET state = 'withdrawn', done_at = ? WHERE id = ?",
                                   arguments: [now.timeIntervalSince1970, marked.id])
                }
            }
            let patientID = try Int64.fetchOne(db, sql: "SELECT patient_ref FROM study WHERE id = ?",
                                               arguments: [candidate.studyID])
            try db.execute(sql: """
                DELETE FROM instance WHERE series_ref IN (SELECT id FROM series WHERE study_ref = :study);
                DELETE FROM series WHERE study_ref = :study;
                DELETE FROM study WHERE id = :study;
                """, arguments: ["study": candidate.studyID])
            if let patientID {
                try db.execute(sql: """
                    DELETE FROM patient WHERE id = ? AND NOT EXISTS (SELECT 1 FROM study WHERE patient_ref = patient.id)
                    """, arguments: [patientID])
            }
            return try paths.filter { path in
                try !(Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM instance WHERE file_path = ?)",
                                    arguments: [path]) ?? false)
            }
        }
    }
}
