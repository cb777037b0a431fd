import Foundation
import GRDB

/// What `status` reports about the spool, kept by the writers: triggers update counters in
/// the same transaction as the rows they count, so a status answer reads a few rows whether
/// the spool holds ten instances or ten million (summing over `instance` each time made it
/// slower as the spool grew).
///
/// Counted: instances and bytes per revision state; studies; per destination, instances and
/// bytes of current revisions per delivery state; per destination, studies per settled state
/// (what a study's state is once complete: only `receiving` depends on the clock, and is
/// worked out from the studies received within `stable_after`, found by index).
///
/// Deleting an instance cascades to its deliveries, whose triggers no longer see the instance
/// (SQLite deletes the parent first): so the instance's own BEFORE DELETE trigger takes its
/// deliveries out of the counts, and a delivery's trigger only counts a current instance it
/// can see.
extension SpoolDatabase {
    static func migrateStatusTotals(_ db: Database) throws {
        // A current instance's study, for the delivery triggers.
        func study(of instance: String) -> String {
            """
            (SELECT se.study_ref FROM instance i JOIN series se ON se.id = i.series_ref
             WHERE i.id = \(instance) AND i.revision_state = 'current')
            """
        }
        func isCurrent(_ instance: String) -> String {
            "EXISTS (SELECT 1 FROM instance WHERE id = \(instance) AND revision_state = 'current')"
        }
        // Adds `sign` (1 or -1) deliveries in `row`'s state to the counts.
        func countDelivery(_ row: String, sign: Int) -> String {
            """
            INSERT INTO delivery_totals (destination, state, instances, bytes)
                SELECT \(row).destination, \(row).state, \(sign), \(sign) * i.size FROM instance i
                WHERE i.id = \(row).instance_ref AND i.revision_state = 'current'
                ON CONFLICT (destination, state) DO UPDATE SET
                    instances = instances + excluded.instances, bytes = bytes + excluded.bytes;
            UPDATE study_delivery SET unstored = unstored + \(sign) * (\(row).state <> 'stored'),
                                      rejected = rejected + \(sign) * (\(row).state = 'rejected')
                WHERE destination = \(row).destination AND study_ref = \(study(of: "\(row).instance_ref"));
            """
        }
        // Adds `sign` (an SQL expression, 1 or -1) times the deliveries of `row` (an instance).
        func countDeliveries(ofInstance row: String, sign: String) -> String {
            """
            INSERT INTO delivery_totals (destination, state, instances, bytes)
                SELECT destination, state, \(sign), \(sign) * \(row).size FROM delivery WHERE instance_ref = \(row).id
                ON CONFLICT (destination, state) DO UPDATE SET
                    instances = instances + excluded.instances, bytes = bytes + excluded.bytes;
            UPDATE study_delivery SET
                unstored = unstored + \(sign) * (SELECT COUNT(*) FROM delivery d WHERE d.instance_ref = \(row).id
                                                 AND d.destination = study_delivery.destination AND d.state <> 'stored'),
                rejected = rejected + \(sign) * (SELECT COUNT(*) FROM delivery d WHERE d.instance_ref = \(row).id
                                                 AND d.destination = study_delivery.destination AND d.state = 'rejected')
                WHERE study_ref = (SELECT study_ref FROM series WHERE id = \(row).series_ref);
            """
        }
        func countStudy(_ row: String, sign: Int) -> String {
            """
            INSERT INTO study_delivery_totals (destination, state, studies) VALUES (\(row).destination, \(row).settled_state, \(sign))
                ON CONFLICT (destination, state) DO UPDATE SET studies = studies + excluded.studies;
            """
        }
        // From the study down (CROSS JOIN fixes the order): from a destination's deliveries
        // down, it would read every delivery there for each new study.
        func studyCount(_ condition: String) -> String {
            """
            (SELECT COUNT(*) FROM series se CROSS JOIN instance i CROSS JOIN delivery d
             WHERE se.study_ref = study_delivery.study_ref AND i.series_ref = se.id AND i.revision_state = 'current'
               AND d.instance_ref = i.id AND d.destination = study_delivery.destination AND \(condition))
            """
        }
        let studyCounts = """
            unstored = \(studyCount("d.state <> 'stored'")), rejected = \(studyCount("d.state = 'rejected'"))
            """
        try db.execute(sql: """
            -- A study's series, studies still receiving, and the next retry, found without a scan.
            CREATE INDEX series_study ON series(study_ref);
            CREATE INDEX study_last_received ON study(last_received_at);
            CREATE INDEX delivery_retry ON delivery(destination, next_at) WHERE state = 'retry';
            CREATE INDEX study_delivery_withheld ON study_delivery(destination, withheld) WHERE withheld IS NOT NULL;
            CREATE TABLE instance_totals (
                revision_state TEXT PRIMARY KEY,
                instances INTEGER NOT NULL,
                bytes INTEGER NOT NULL
            ) WITHOUT ROWID;
            INSERT INTO instance_totals
                SELECT state, (SELECT COUNT(*) FROM instance WHERE revision_state = state),
                       (SELECT COALESCE(SUM(size), 0) FROM instance WHERE revision_state = state)
                FROM (SELECT 'current' AS state UNION ALL SELECT 'superseded');
            CREATE TABLE spool_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO spool_counter VALUES ('studies', (SELECT COUNT(*) FROM study));
            CREATE TABLE delivery_totals (
                destination TEXT NOT NULL,
                state TEXT NOT NULL,
                instances INTEGER NOT NULL,
                bytes INTEGER NOT NULL,
                PRIMARY KEY (destination, state)
            ) WITHOUT ROWID;
            INSERT INTO delivery_totals
                SELECT d.destination, d.state, COUNT(*), COALESCE(SUM(i.size), 0)
                FROM delivery d JOIN instance i ON i.id = d.instance_ref
                WHERE i.revision_state = 'current' GROUP BY d.destination, d.state;
            -- Per study and destination: current instances not stored there, and refused there.
            ALTER TABLE study_delivery ADD COLUMN unstored INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE study_delivery ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;
            -- The study's state there once complete (DeliveryQueue.studyState, in SQL).
            ALTER TABLE study_delivery ADD COLUMN settled_state TEXT GENERATED ALWAYS AS (
                CASE WHEN withheld IS NOT NULL THEN 'withheld'
                     WHEN verified_at IS NOT NULL THEN 'verified'
                     WHEN rejected > 0 THEN 'rejected'
                     WHEN unstored > 0 THEN 'uploading'
                     ELSE 'verifying' END) VIRTUAL;
            UPDATE study_delivery SET \(studyCounts);
            CREATE TABLE study_delivery_totals (
                destination TEXT NOT NULL,
                state TEXT NOT NULL,
                studies INTEGER NOT NULL,
                PRIMARY KEY (destination, state)
            ) WITHOUT ROWID;
            INSERT INTO study_delivery_totals
                SELECT destination, settled_state, COUNT(*) FROM study_delivery GROUP BY 1, 2;

            CREATE TRIGGER instance_totals_insert AFTER INSERT ON instance BEGIN
                UPDATE instance_totals SET instances = instances + 1, bytes = bytes + NEW.size
                    WHERE revision_state = NEW.revision_state;
            END;
            CREATE TRIGGER instance_totals_delete AFTER DELETE ON instance BEGIN
                UPDATE instance_totals SET instances = instances - 1, bytes = bytes - OLD.size
                    WHERE revision_state = OLD.revision_state;
            END;
            CREATE TRIGGER instance_deliveries_delete BEFORE DELETE ON instance WHEN OLD.revision_state = 'current' BEGIN
                \(countDeliveries(ofInstance: "OLD", sign: "-1"))
            END;
            CREATE TRIGGER instance_totals_update AFTER UPDATE OF revision_state, size ON instance BEGIN
                UPDATE instance_totals SET instances = instances - 1, bytes = bytes - OLD.size
                    WHERE revision_state = OLD.revision_state;
                UPDATE instance_totals SET instances = instances + 1, bytes = bytes + NEW.size
                    WHERE revision_state = NEW.revision_state;
            END;
            CREATE TRIGGER instance_revision_deliveries AFTER UPDATE OF revision_state ON instance
                WHEN OLD.revision_state <> NEW.revision_state BEGIN
                \(countDeliveries(ofInstance: "NEW", sign: "(CASE NEW.revision_state WHEN 'current' THEN 1 ELSE -1 END)"))
            END;
            CREATE TRIGGER study_count_insert AFTER INSERT ON study BEGIN
                UPDATE spool_counter SET value = value + 1 WHERE name = 'studies';
            END;
            CREATE TRIGGER study_count_delete AFTER DELETE ON study BEGIN
                UPDATE spool_counter SET value = value - 1 WHERE name = 'studies';
            END;
            CREATE TRIGGER delivery_totals_insert AFTER INSERT ON delivery BEGIN
                \(countDelivery("NEW", sign: 1))
            END;
            CREATE TRIGGER delivery_totals_delete AFTER DELETE ON delivery WHEN \(isCurrent("OLD.instance_ref")) BEGIN
                \(countDelivery("OLD", sign: -1))
            END;
            CREATE TRIGGER delivery_totals_update AFTER UPDATE OF state ON delivery WHEN OLD.state <> NEW.state BEGIN
                \(countDelivery("OLD", sign: -1))
                \(countDelivery("NEW", sign: 1))
            END;
            -- A study's first delivery to a destination is inserted before its study_delivery row.
            CREATE TRIGGER study_delivery_totals_insert AFTER INSERT ON study_delivery BEGIN
                \(countStudy("NEW", sign: 1))
                UPDATE study_delivery SET \(studyCounts)
                    WHERE study_ref = NEW.study_ref AND destination = NEW.destination;
            END;
            CREATE TRIGGER study_delivery_totals_delete AFTER DELETE ON study_delivery BEGIN
                \(countStudy("OLD", sign: -1))
            END;
            CREATE TRIGGER study_delivery_totals_update AFTER UPDATE ON study_delivery
                WHEN OLD.settled_state IS NOT NEW.settled_state BEGIN
                \(countStudy("OLD", sign: -1))
                \(countStudy("NEW", sign: 1))
            END;
            """)
    }

    /// Counts of current instances and of studies.
    public func counts() throws -> (studies: Int, instances: Int) {
        try writer.read { db in
            let instances = try Int.fetchOne(db, sql: "SELECT instances FROM instance_totals WHERE revision_state = 'current'") ?? 0
            let studies = try Int.fetchOne(db, sql: "SELECT value FROM spool_counter WHERE name = 'studies'") ?? 0
            return (studies, instances)
        }
    }

    /// Instances and bytes per revision state ("current", "superseded"), states with none left out.
    public func totalsByRevisionState() throws -> [String: (instances: Int, bytes: Int)] {
        try writer.read { db in
            var result: [String: (instances: Int, bytes: Int)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT revision_state, instances, bytes FROM instance_totals WHERE instances <> 0") {
                result[row[0]] = (row[1], row[2])
            }
            return result
        }
    }

    /// Per destination: instances and bytes in each delivery state (current instances).
    public func deliveryTotals() throws -> [String: [DeliveryState: DeliveryTotals]] {
        try writer.read { db in
            var result: [String: [DeliveryState: DeliveryTotals]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT destination, state, instances, bytes FROM delivery_totals WHERE instances <> 0") {
                guard let state = DeliveryState(rawValue: row[1]) else { continue }
                result[row[0], default: [:]][state] = DeliveryTotals(instances: row[2], bytes: row[3])
            }
            return result
        }
    }

    /// Per destination: how many studies are in each state; a study not withheld is
    /// `receiving` while its last instance is newer than `stableBefore`.
    public func studyStateTotals(stableBefore: Date) throws -> [String: [StudyDeliveryState: Int]] {
        try writer.read { db in
            var result: [String: [StudyDeliveryState: Int]] = [:]
            func add(_ destination: String, _ state: String, _ count: Int) {
                guard let state = StudyDeliveryState(rawValue: state) else { return }
                result[destination, default: [:]][state, default: 0] += count
            }
            for row in try Row.fetchAll(db, sql: "SELECT destination, state, studies FROM study_delivery_totals") {
                add(row[0], row[1], row[2])
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT sd.destination, sd.settled_state, COUNT(*) FROM study st
                JOIN study_delivery sd ON sd.study_ref = st.id AND sd.withheld IS NULL
                WHERE st.last_received_at > ? GROUP BY 1, 2
                """, arguments: [stableBefore.timeIntervalSince1970]) {
                add(row[0], row[1], -row[2])
                add(row[0], StudyDeliveryState.receiving.rawValue, row[2])
            }
            return result.mapValues { $0.filter { $0.value != 0 } }
        }
    }
}
