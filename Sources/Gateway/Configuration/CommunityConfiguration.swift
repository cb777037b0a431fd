import Foundation

/// `[[community]]`: one search folder, answered from a `[destinations.NAME]` (docs/community.md).
public struct CommunitySettings: Sendable, Equatable {
    public var aeTitle: String
    public var destination: String
    public var excludeOwnSite = true
    public var queryTimeout: Duration = .seconds(10)
    public var retrieveTimeout: Duration = .seconds(60)
    public var maxResults = 1000

    public init(aeTitle: String, destination: String) {
        self.aeTitle = aeTitle
        self.destination = destination
    }
}

/// `[[ae]]`: a local AE that C-MOVE may send to, or a PACS the migration reads.
public struct KnownAE: Sendable, Equatable {
    /// How the migration retrieves from this AE (docs/migration.md).
    public enum Retrieve: String, Sendable, Equatable {
        /// C-MOVE to Passerelle's storage AE title (the PACS opens associations back).
        case move
        /// C-GET: the instances come back on Passerelle's own association (no route back needed).
        case get
    }

    public var title: String
    public var host: String
    public var port: Int
    public var retrieve: Retrieve = .move
    /// The addresses this AE title may call from, with `[dicom] check_calling_host`: `hosts`,
    /// else `host` (its addresses when it is a name, resolved when the file is read).
    public var hosts: [AddressRange] = []
    /// `tls = true`: the associations Passerelle opens to it (C-MOVE's C-STORE, the
    /// migration's) run over TLS.
    public var tls: PeerTLS?

    public init(title: String, host: String, port: Int, retrieve: Retrieve = .move, hosts: [AddressRange] = [],
                tls: PeerTLS? = nil) {
        self.title = title
        self.host = host
        self.port = port
        self.retrieve = retrieve
        self.hosts = hosts
        self.tls = tls
    }
}

extension Settings {
    /// Entries of an array of tables in written order ("community.0", "community.1", …).
    func entries(of array: String) -> [String] {
        names(under: array).compactMap(Int.init).sorted().map { "\(array).\($0)" }
    }

    func parseCommunity(into configuration: inout GatewayConfiguration) throws(ConfigurationError) {
        if let text = self["spool.cache_retention"]?.value.string, let value = ConfigurationValues.duration(text) {
            configuration.spool.cacheRetention = value
        }
        for (index, destination) in configuration.destinations.enumerated() {
            if let upload = self["destinations.\(destination.name).upload"]?.value.bool {
                configuration.destinations[index].upload = upload
            }
        }

        configuration.siteDirectory = []
        var siteIDs: Set<Int> = [], issuers: Set<String> = []
        for prefix in entries(of: "site_directory") {
            func required(_ key: String) throws(ConfigurationError) -> LocatedValue {
                guard let value = self["\(prefix).\(key)"] else {
                    throw ConfigurationError(file: locationOfAny(prefix)?.file ?? "configuration",
                                             line: locationOfAny(prefix)?.line,
                                             message: "a [[site_directory]] entry has no \(key)",
                                             hint: "each site needs id, emitter, name and issuer_of_patient_id")
                }
                return value
            }
            guard let id = try required("id").value.int, let emitter = try required("emitter").value.string,
                  let name = try required("name").value.string,
                  let issuer = try required("issuer_of_patient_id").value.string else { continue }
            guard siteIDs.insert(id).inserted else {
                throw error("\(prefix).id", "site \(id) is listed twice", hint: "one [[site_directory]] entry per site")
            }
            let trimmedIssuer = issuer.trimmingCharacters(in: .whitespaces)
            guard !trimmedIssuer.isEmpty, issuers.insert(trimmedIssuer).inserted else {
                throw error("\(prefix).issuer_of_patient_id", "\"\(issuer)\" is empty or names two sites",
                            hint: "studies are attributed to a site by this issuer: it must be unique")
            }
            configuration.siteDirectory.append(SiteDirectoryEntry(
                id: id, emitter: emitter, name: name, issuerOfPatientID: trimmedIssuer))
        }

        configuration.knownAEs = []
        for prefix in entries(of: "ae") {
            guard let title = self["\(prefix).title"]?.value.string?.trimmingCharacters(in: .whitespaces),
                  let host = self["\(prefix).host"]?.value.string, let port = self["\(prefix).port"]?.value.int
            else {
                throw ConfigurationError(file: locationOfAny(prefix)?.file ?? "configuration",
                                         line: locationOfAny(prefix)?.line,
                                         message: "an [[ae]] entry lacks title, host or port",
                                         hint: "title = \"PACS\", host = \"10.1.2.3\", port = 104")
            }
            guard (1...65_535).contains(port) else { throw error("\(prefix).port", "\(port) is not a TCP port") }
            guard !host.isEmpty else { throw error("\(prefix).host", "is empty") }
            guard !configuration.knownAEs.contains(where: { $0.title == title }) else {
                throw error("\(prefix).title", "\(title) is listed twice", hint: "one [[ae]] entry per AE title")
            }
            var retrieve = KnownAE.Retrieve.move
            if let text = self["\(prefix).retrieve"]?.value.string {
                guard let value = KnownAE.Retrieve(rawValue: text) else {
                    throw error("\(prefix).retrieve", "\"\(text)\" is not a retrieval method", hint: "\"move\" or \"get\"")
                }
                retrieve = value
            }
            var hosts: [AddressRange] = []
            if let listed = self["\(prefix).hosts"]?.value.array {
                for text in listed.compactMap(\.string) {
                    guard let range = AddressRange(text) else {
                        throw error("\(prefix).hosts", "\"\(text)\" is not an address or a network",
                                    hint: "write \"10.1.2.3\" or \"10.1.4.0/24\"")
                    }
                    hosts.append(range)
                }
            } else if let literal = AddressRange(host) {
                hosts = [literal]
            } else if configuration.dicom.checkCallingHost {
                hosts = AddressRange.resolving(host)
                guard !hosts.isEmpty else {
                    throw error("\(prefix).host", "\(host) does not resolve, so its calling host cannot be checked",
                                hint: "list its addresses: hosts = [\"10.1.2.3\"]")
                }
            }
            configuration.knownAEs.append(KnownAE(title: title, host: host, port: port, retrieve: retrieve, hosts: hosts,
                                                  tls: try parsePeerTLS(prefix, dicom: configuration.dicom)))
        }

        configuration.communities = []
        for prefix in entries(of: "community") {
            guard let title = self["\(prefix).ae_title"]?.value.string?.trimmingCharacters(in: .whitespaces),
                  let destination = self["\(prefix).destination"]?.value.string else {
                throw ConfigurationError(file: locationOfAny(prefix)?.file ?? "configuration",
                                         line: locationOfAny(prefix)?.line,
                                         message: "a [[community]] entry lacks ae_title or destination",
                                         hint: "ae_title = \"MIRC\", destination = \"community\"")
            }
            guard configuration.destinations.contains(where: { $0.name == destination }) else {
                throw error("\(prefix).destination", "no [destinations.\(destination)]",
                            hint: "name one of: \(configuration.destinations.map(\.name).joined(separator: ", "))")
            }
            guard title != configuration.dicom.aeTitle,
                  !configuration.communities.contains(where: { $0.aeTitle == title }) else {
                throw error("\(prefix).ae_title", "\(title) is already the storage AE title or another community's",
                            hint: "each search folder has its own called AE title")
            }
            var community = CommunitySettings(aeTitle: title, destination: destination)
            if let value = self["\(prefix).exclude_own_site"]?.value.bool { community.excludeOwnSite = value }
            for (key, path) in [("query_timeout", \CommunitySettings.queryTimeout),
                                ("retrieve_timeout", \.retrieveTimeout)] {
                guard let text = self["\(prefix).\(key)"]?.value.string,
                      let value = ConfigurationValues.duration(text) else { continue }
                guard value >= .milliseconds(100) else { throw error("\(prefix).\(key)", "\(text) is too short") }
                community[keyPath: path] = value
            }
            if let value = self["\(prefix).max_results"]?.value.int {
                guard (1...100_000).contains(value) else {
                    throw error("\(prefix).max_results", "\(value) is out of range", hint: "1 to 100000")
                }
                community.maxResults = value
            }
            configuration.communities.append(community)
        }
    }
}
