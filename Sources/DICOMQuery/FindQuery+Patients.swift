import DICOMCore

extension FindQuery {
    /// PATIENT level results from the studies QIDO-RS found: one per (PatientID,
    /// IssuerOfPatientID), in order of first appearance. Identities of different issuers are
    /// never merged, even with the same ID and name; studies without PatientID are grouped
    /// by name and birth date too, so that unidentified patients stay apart.
    ///
    /// Each carries the patient attributes (0010,xxxx) and InstitutionName of its first study,
    /// the ModalitiesInStudy of all (for the report flag), NumberOfPatientRelatedStudies
    /// (0020,1200), and NumberOfPatientRelatedSeries/Instances (0020,1202)/(0020,1204) summed from
    /// the studies' (0020,1206)/(0020,1208) when the hub returned any.
    public static func patients(from studies: [QIDOAttributes]) -> [QIDOAttributes] {
        struct Patient {
            var attributes: QIDOAttributes
            var studies = 0
            var series: Int?
            var instances: Int?
            var modalities: [String] = []
        }
        func first(_ study: QIDOAttributes, _ tag: Tag) -> String {
            study[tag]?.trimmedValues.first ?? ""
        }
        func add(_ count: Int?, _ sum: Int?) -> Int? {
            guard let count else { return sum }
            return (sum ?? 0) + count
        }

        var order: [[String]] = []
        var patients: [[String]: Patient] = [:]
        for study in studies {
            var identity = [first(study, Tag.patientID), first(study, Tag.issuerOfPatientID)]
            if identity[0].isEmpty {
                identity += [first(study, Tag.patientName), first(study, Tag.patientBirthDate)]
            }
            if patients[identity] == nil {
                order.append(identity)
                patients[identity] = Patient(attributes: study.filter { tag, _ in
                    tag.group == 0x0010 || tag == .institutionName
                })
            }
            patients[identity]!.studies += 1
            let count: (Tag) -> Int? = { study[$0]?.trimmedValues.first.flatMap { Int($0) } }
            patients[identity]!.series = add(count(Tag.numberOfStudyRelatedSeries), patients[identity]!.series)
            patients[identity]!.instances = add(count(Tag.numberOfStudyRelatedInstances),
                                                patients[identity]!.instances)
            for modality in study[Tag.modalitiesInStudy]?.trimmedValues ?? []
            where !patients[identity]!.modalities.contains(modality) {
                patients[identity]!.modalities.append(modality)
            }
        }

        return order.map { identity in
            let patient = patients[identity]!
            var attributes = patient.attributes
            func set(_ tag: Tag, _ vr: String, _ values: [String]) {
                attributes[tag] = QueryAttribute(tag: tag, vr: vr, values: values)
            }
            set(Tag.numberOfPatientRelatedStudies, "IS", [String(patient.studies)])
            if let series = patient.series { set(Tag.numberOfPatientRelatedSeries, "IS", [String(series)]) }
            if let instances = patient.instances {
                set(Tag.numberOfPatientRelatedInstances, "IS", [String(instances)])
            }
            if !patient.modalities.isEmpty { set(Tag.modalitiesInStudy, "CS", patient.modalities) }
            return attributes
        }
    }
}
