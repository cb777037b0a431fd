/// An entry of `[[site_directory]]`: who produced a study, found by its IssuerOfPatientID.
public struct SiteDirectoryEntry: Sendable, Equatable {
    public var id: Int
    public var emitter: String
    public var name: String
    public var issuerOfPatientID: String

    public init(id: Int, emitter: String, name: String, issuerOfPatientID: String) {
        self.id = id
        self.emitter = emitter
        self.name = name
        self.issuerOfPatientID = issuerOfPatientID
    }
}
