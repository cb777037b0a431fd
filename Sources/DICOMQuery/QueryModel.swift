import DICOMCore

/// Query/Retrieve information models (PS3.4 C.6) and their SOP classes.
public enum QueryModel: String, Sendable, CaseIterable {
    case patientRoot
    case studyRoot

    /// The DIMSE service a SOP Class UID of the model stands for.
    public enum Operation: Sendable, CaseIterable {
        case find, move, get
    }

    public var findSOPClassUID: String { sopClassUID(for: .find) }
    public var moveSOPClassUID: String { sopClassUID(for: .move) }
    public var getSOPClassUID: String { sopClassUID(for: .get) }

    /// PS3.4 Table C.6-1 (Patient Root) and C.6-2 (Study Root) SOP classes, from the generated registry.
    public func sopClassUID(for operation: Operation) -> String {
        switch (self, operation) {
        case (.patientRoot, .find): UIDRegistry.patientRootQueryRetrieveInformationModelFindSOPClassUID
        case (.patientRoot, .move): UIDRegistry.patientRootQueryRetrieveInformationModelMoveSOPClassUID
        case (.patientRoot, .get): UIDRegistry.patientRootQueryRetrieveInformationModelGetSOPClassUID
        case (.studyRoot, .find): UIDRegistry.studyRootQueryRetrieveInformationModelFindSOPClassUID
        case (.studyRoot, .move): UIDRegistry.studyRootQueryRetrieveInformationModelMoveSOPClassUID
        case (.studyRoot, .get): UIDRegistry.studyRootQueryRetrieveInformationModelGetSOPClassUID
        }
    }

    /// The model of a FIND, MOVE or GET SOP Class UID; nil for any other UID.
    public init?(sopClassUID: String) {
        guard let (model, _) = QueryModel.classify(sopClassUID) else { return nil }
        self = model
    }

    /// The operation of a FIND, MOVE or GET SOP Class UID of either model.
    public static func operation(forSOPClassUID uid: String) -> Operation? {
        classify(uid)?.1
    }

    private static func classify(_ uid: String) -> (QueryModel, Operation)? {
        let uid = QueryAttribute.trimmed(uid)
        for model in allCases {
            for operation in Operation.allCases where model.sopClassUID(for: operation) == uid {
                return (model, operation)
            }
        }
        return nil
    }

    /// Levels of the model, top down (PS3.4 C.3.1, C.3.2).
    public var levels: [QueryLevel] {
        switch self {
        case .patientRoot: [.patient, .study, .series, .image]
        case .studyRoot: [.study, .series, .image]
        }
    }

    var name: String {
        switch self {
        case .patientRoot: "Patient Root"
        case .studyRoot: "Study Root"
        }
    }
}
