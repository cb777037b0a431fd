import Foundation
import Spool

/// How a shared destination withdraws a study an opposition reached too late (docs/rights.md).
public enum WithdrawMethod: Sendable, Equatable, CustomStringConvertible {
    /// Orthanc's REST API: look the study up, `DELETE /studies/{id}`.
    case orthanc(URL)
    /// `DELETE {url}/studies/{uid}` (cloud DICOM stores, dcm4chee-arc).
    case dicomwebDelete
    /// An alarm in status and the journal until `passerellectl opposition done STUDY`.
    case manual

    public var description: String {
        switch self {
        case .orthanc: "orthanc"
        case .dicomwebDelete: "dicomweb-delete"
        case .manual: "manual"
        }
    }
}

/// How a destination takes an identity correction of a study it already holds (docs/hl7.md).
public enum IdentityUpdateMethod: Sendable, Equatable, CustomStringConvertible {
    /// The study retrieved from the destination (WADO-RS), corrected, stored again (STOW-RS):
    /// for hubs that overwrite an instance stored again (Orthanc's `OverwriteInstances`,
    /// dcm4chee-arc's overwrite policy).
    case resend
    /// `resend`, and after a change of patient ID, the copy Orthanc keeps under the old ID
    /// deleted through its REST API (Orthanc keys a study by patient ID too).
    case orthanc(URL)

    public var description: String {
        switch self {
        case .resend: "resend"
        case .orthanc: "orthanc"
        }
    }
}

/// `[consent]`: whether shared destinations get a study without a record that the patient was
/// informed.
public struct ConsentSettings: Sendable, Equatable {
    public enum Default: String, Sendable, Equatable {
        /// Implicit consent after information (the regional rule).
        case share
        /// Shared destinations wait for `passerellectl consent informed` (or an emergency share).
        case hold
    }

    public var `default`: Default = .share
}

extension GatewayConfiguration {
    /// What the spool's sharing check needs. A shared destination this site does not upload to
    /// (`upload = false`) holds nothing of the site's to withhold or withdraw.
    public var sharingRules: SharingRules {
        SharingRules(sharedDestinations: Set(destinations.filter { $0.shared && $0.upload }.map(\.name)),
                     holdUntilInformed: consent.default == .hold,
                     siteIssuer: site.issuerOfPatientID ?? "")
    }
}

extension Settings {
    /// After destinations and communities: `shared` defaults to true for `community` and for any
    /// destination a `[[community]]` points at.
    func parseRights(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        if let text = self["consent.default"]?.value.string {
            guard let value = ConsentSettings.Default(rawValue: text) else {
                throw error("consent.default", "\"\(text)\" is not a consent rule", hint: "\"share\" or \"hold\"")
            }
            configuration.consent.default = value
        }
        let pointedAt = Set(configuration.communities.map(\.destination))
        for index in configuration.destinations.indices {
            let name = configuration.destinations[index].name
            let prefix = "destinations.\(name)"
            let shared = self["\(prefix).shared"]?.value.bool ?? (name == "community" || pointedAt.contains(name))
            configuration.destinations[index].shared = shared
            let url = configuration.destinations[index].url
            let orthancURL: URL
            if let text = self["\(prefix).orthanc_url"]?.value.string {
                guard let parsed = URL(string: text), let scheme = parsed.scheme?.lowercased(),
                      scheme == "http" || scheme == "https", parsed.host != nil else {
                    throw error("\(prefix).orthanc_url", "\(text) is not an http(s) URL",
                                hint: "Orthanc's REST root, e.g. \"https://dc.example/orthanc\"")
                }
                orthancURL = parsed
            } else {
                orthancURL = Self.withoutDICOMwebSuffix(url)
            }
            switch self["\(prefix).withdraw"]?.value.string {
            case nil, "manual": configuration.destinations[index].withdraw = .manual
            case "orthanc": configuration.destinations[index].withdraw = .orthanc(orthancURL)
            case "dicomweb-delete": configuration.destinations[index].withdraw = .dicomwebDelete
            case let other?:
                throw error("\(prefix).withdraw", "\"\(other)\" is not a withdrawal method",
                            hint: "\"orthanc\", \"dicomweb-delete\" or \"manual\"")
            }
            switch self["\(prefix).identity_update"]?.value.string {
            case nil, "resend": configuration.destinations[index].identityUpdate = .resend
            case "orthanc": configuration.destinations[index].identityUpdate = .orthanc(orthancURL)
            case let other?:
                throw error("\(prefix).identity_update", "\"\(other)\" is not an identity update method",
                            hint: "\"resend\" or \"orthanc\"")
            }
            if !shared, self["\(prefix).withdraw"] != nil {
                throw error("\(prefix).withdraw", "only a shared destination withdraws studies",
                            hint: "set shared = true, or remove withdraw")
            }
        }
    }

    /// `https://dc/orthanc/dicom-web` → `https://dc/orthanc`.
    static func withoutDICOMwebSuffix(_ url: URL) -> URL {
        var text = url.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix("/dicom-web") { text.removeLast("/dicom-web".count) }
        return URL(string: text) ?? url
    }
}
