import Foundation
import GRDB

/// A migration job's progress, kept by the writers (as `StatusTotals`): `status` shows it at
/// every request, and a job of ten years of a PACS holds hundreds of thousands of studies.
extension SpoolDatabase {
    static func migrateBackfillTotals(_ db: Database) throws {
        func count(_ row: String, sign: Int) -> String {
            """
            INSERT INTO backfill_totals (job_id, state, studies, expected, retrieved)
                VALUES (\(row).job_id, \(row).state, \(sign), \(sign) * COALESCE(\(row).expected, 0), \(sign) * \(row).retrieved)
                ON CONFLICT (job_id, state) DO UPDATE SET studies = studies + excluded.studies,
                    expected = expected + excluded.expected, retrieved = retrieved + excluded.retrieved;
            """
        }
        try db.execute(sql: """
            CREATE TABLE backfill_totals (
                job_id INTEGER NOT NULL REFERENCES backfill_job(id) ON DELETE CASCADE,
                state TEXT NOT NULL,
                studies INTEGER NOT NULL,
                expected INTEGER NOT NULL,
                retrieved INTEGER NOT NULL,
                PRIMARY KEY (job_id, state)
            ) WITHOUT ROWID;
            INSERT INTO backfill_totals
                SELECT job_id, state, COUNT(*), COALESCE(SUM(expected), 0), SUM(retrieved) FROM backfill_study GROUP BY 1, 2;
            -- The studies finished in the last hour, and the first failures, without a scan.
            CREATE INDEX backfill_study_finished ON backfill_study (job_id, finished_at) WHERE state <> 'found';
            CREATE INDEX backfill_study_failed ON backfill_study (job_id, study_date) WHERE state = 'failed';
            CREATE TRIGGER backfill_totals_insert AFTER INSERT ON backfill_study BEGIN
                \(count("NEW", sign: 1))
            END;
            CREATE TRIGGER backfill_totals_delete AFTER DELETE ON backfill_study BEGIN
                \(count("OLD", sign: -1))
            END;
            CREATE TRIGGER backfill_totals_update AFTER UPDATE OF state, expected, retrieved ON backfill_study BEGIN
                \(count("OLD", sign: -1))
                \(count("NEW", sign: 1))
            END;
            """)
    }
}
