import Foundation
import Testing
@testable import Gateway
import Spool

@Suite struct BackfillWalkTests {
    @Test func aCappedDayIsNarrowedByHourThenTenMinutes() throws {
        let byHour = try #require(BackfillWalk.narrower(timeRange: ""))
        #expect(byHour.count == 24)
        #expect(byHour.first == "00-005959.999999")
        #expect(byHour.last == "23-235959.999999")
        let byTen = try #require(BackfillWalk.narrower(timeRange: "08-085959.999999"))
        #expect(byTen == ["0800-080959.999999", "0810-081959.999999", "0820-082959.999999", "0830-083959.999999",
                          "0840-084959.999999", "0850-085959.999999"])
        #expect(BackfillWalk.narrower(timeRange: "0810-081959.999999") == nil)
        // As text, each range holds every valid form of its times ("08", "0800", "085959.5").
        for time in ["08", "0800", "080000", "085959.5", "085959.999999"] {
            #expect(time >= "08" && time <= "085959.999999", "\(time)")
        }
        #expect(!("09" <= "085959.999999"))
    }

    @Test func modalitiesAreFilteredOnTheAnswers() {
        let ct = FoundStudy(studyInstanceUID: "1", studyDate: "", patientID: "", modalities: ["CT", "SR"], instances: 1)
        let unknown = FoundStudy(studyInstanceUID: "2", studyDate: "", patientID: "", modalities: [], instances: 1)
        #expect(BackfillWalk.selected(ct, modalities: []))
        #expect(BackfillWalk.selected(ct, modalities: ["MR", "CT"]))
        #expect(!BackfillWalk.selected(ct, modalities: ["MR"]))
        #expect(BackfillWalk.selected(unknown, modalities: ["MR"]))
    }

    @Test func daysAndDates() {
        #expect(BackfillWalk.days(since: "20240227", until: "20240301") == ["20240227", "20240228", "20240229", "20240301"])
        #expect(BackfillWalk.days(since: "20240301", until: "20240227").isEmpty)
        #expect(BackfillWalk.normalizedDate("2024-01-31") == "20240131")
        #expect(BackfillWalk.normalizedDate("20240131") == "20240131")
        #expect(BackfillWalk.normalizedDate("2023-02-29") == nil)
        #expect(BackfillWalk.normalizedDate("yesterday") == nil)
    }

    @Test func timeWindowsWithDaysAndAcrossMidnight() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        func at(_ day: Int, _ hour: Int, _ minute: Int = 0) -> Date {  // January 2024: the 1st is a Monday
            calendar.date(from: DateComponents(year: 2024, month: 1, day: day, hour: hour, minute: minute))!
        }
        let nights = try #require(TimeWindow.parse("20:00-07:00"))
        #expect(nights.contains(at(1, 22), calendar: calendar))
        #expect(nights.contains(at(2, 6, 59), calendar: calendar))
        #expect(!nights.contains(at(2, 7), calendar: calendar))
        #expect(!nights.contains(at(2, 12), calendar: calendar))
        let weekend = try #require(TimeWindow.parse("sat-sun 00:00-24:00"))
        #expect(weekend.contains(at(6, 12), calendar: calendar))   // Saturday
        #expect(weekend.contains(at(7, 23, 59), calendar: calendar))  // Sunday
        #expect(!weekend.contains(at(8, 0, 1), calendar: calendar))  // Monday
        let friday = try #require(TimeWindow.parse("fri 20:00-07:00"))
        #expect(friday.contains(at(6, 3), calendar: calendar))    // Saturday early: Friday's night
        #expect(!friday.contains(at(6, 21), calendar: calendar))  // Saturday evening is not
        #expect(TimeWindow.parse("mon,wed 12:00-14:00")?.weekdays == [2, 4])
        for bad in ["20:00", "25:00-07:00", "10:00-10:00", "funday 10:00-11:00", "mon 10:00-11:00 x"] {
            #expect(TimeWindow.parse(bad) == nil, "\(bad)")
        }
        #expect(BackfillWalk.openFraction([]) == 1)
        #expect(abs(BackfillWalk.openFraction([nights]) - 11.0 / 24) < 0.01)
        #expect(abs(BackfillWalk.openFraction([weekend]) - 2.0 / 7) < 0.01)
    }

    @Test func aPlanCountsByYearAndModalityAndAReconciliationSortsTheStudies() {
        var plan = SurveyResult()
        plan.addPlanned([
            .init(studyInstanceUID: "1", studyDate: "20230105", patientID: "A", modalities: ["CT", "SR"], instances: 10),
            .init(studyInstanceUID: "2", studyDate: "20230106", patientID: "B", modalities: ["CT"], instances: 5),
            .init(studyInstanceUID: "3", studyDate: "20240101", patientID: "C", modalities: ["MR"], instances: 7),
        ], atArchive: ["2": 5, "3": 6])
        #expect(plan.studies == 3 && plan.instances == 22 && plan.alreadyArchived == 1)
        #expect(plan.byYearModality.map { "\($0.year) \($0.modality) \($0.studies) \($0.instances) \($0.alreadyArchived)" }
                == ["2023 CT 2 15 1", "2023 SR 1 10 0", "2024 MR 1 7 0"])
        var reconciliation = SurveyResult()
        reconciliation.addReconciled(day: "20240101", [
            .init(studyInstanceUID: "1", studyDate: "20240101", patientID: "A", modalities: [], instances: 3),
            .init(studyInstanceUID: "2", studyDate: "20240101", patientID: "B", modalities: [], instances: 3),
            .init(studyInstanceUID: "3", studyDate: "20240101", patientID: "C", modalities: [], instances: 3),
        ], atArchive: ["2": 3, "3": 2, "9": 4], inSpool: ["1": 1], modalities: [])
        #expect(reconciliation.missing.map(\.study) == ["1"])
        #expect(reconciliation.missing.first?.spoolInstances == 1)
        #expect(reconciliation.countDiffers.map(\.study) == ["3"])
        #expect(reconciliation.onlyAtArchive.map(\.study) == ["9"])
        #expect(reconciliation.matching == 1)
    }
}
