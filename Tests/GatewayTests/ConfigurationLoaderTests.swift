import Foundation
import Spool
import Testing
@testable import Gateway

@Suite struct ConfigurationLoaderTests {
    @Test func emptyDocumentGivesTheEmbeddedDefaults() throws {
        let configuration = try ConfigurationLoader.parse(text: "", file: "p.toml")
        #expect(configuration == .embeddedDefault)
        #expect(configuration.dicom.aeTitle == "PASSERELLE")
        #expect(configuration.dicom.port == 11112)
        #expect(configuration.spool.path == "./passerelle-data")
    }

    @Test func readsTheReferenceKeys() throws {
        let configuration = try ConfigurationLoader.parse(text: """
            [site]
            id = 213
            emitter = "csorl45000"
            issuer_of_patient_id = "CHR-ORLEANS"

            [dicom]
            ae_title = "GW_ORL"
            port = 104
            allowed_calling_aets = ["CT1", "PACS"]
            max_associations = 8
            max_pdu_length = 65536
            idle_timeout = "90s"

            [spool]
            path = "/srv/spool"
            min_free = "2GB"
            retention = "7d"

            [destinations.archive]
            url = "https://dc.example/dicom-web"

            [[ae]]
            title = "PACS"
            host = "10.1.2.3"
            port = 104
            """, file: "p.toml")
        #expect(configuration.site.id == 213)
        #expect(configuration.dicom.aeTitle == "GW_ORL")
        #expect(configuration.dicom.port == 104)
        #expect(configuration.dicom.allowedCallingAETitles == ["CT1", "PACS"])
        #expect(configuration.dicom.maxAssociations == 8)
        #expect(configuration.dicom.maxPDULength == 65536)
        #expect(configuration.dicom.idleTimeout == .seconds(90))
        #expect(configuration.spool.minFree == .bytes(2_000_000_000))
        #expect(configuration.spool.retention == .seconds(7 * 86_400))
    }

    @Test(arguments: [
        ("[dicom]\nport = 11112\nae_tilte = \"X\"\n", 3, "unknown key 'ae_tilte'", "did you mean 'ae_title'?"),
        ("[dicom]\n\nport = \"eleven\"\n", 3, "dicom.port: expected an integer", "without quotes"),
        ("[dicom]\nport = 70000\n", 2, "dicom.port: 70000 is not a TCP port", "1 to 65535"),
        ("[dicom]\nidle_timeout = \"ten\"\n", 2, "dicom.idle_timeout: expected a duration", "\"30s\""),
        ("[spool]\nmin_free = \"lots\"\n", 2, "spool.min_free: expected a percentage or a size", "\"5%\""),
        ("[dicom]\nae_title = \"A_TITLE_LONGER_THAN_16\"\n", 2, "not a valid AE title", "1 to 16"),
        ("[nonsense]\nx = 1\n", 1, "unknown section [nonsense]", "known sections"),
        ("[dicom]\nport = 104\n\n[audit]\nrepository = \"ftp://audit.example:6514\"\n", 5,
         "audit.repository: unknown scheme", "tls://host:6514"),
        ("[audit]\nrepository = \"udp://audit.example:99999\"\n", 2, "is not a port", nil),
        ("[audit]\nrepository = \"udp://audit.example:514\"\nca = \"/etc/hosts\"\n", 3, "only applies to a tls://", nil),
        ("[audit]\n\nca = \"/etc/hosts\"\n", 3, "audit.ca: is set without a repository", nil),
        ("[audit]\nrepository = \"tls://a:6514\"\nclient_cert = \"/nonexistent.pem\"\nclient_key = \"/nonexistent.key\"\n",
         3, "cannot read /nonexistent.pem", nil),
        ("[audit]\nenabled = \"no\"\n", 2, "audit.enabled: expected true or false", nil),
        ("[hl7]\nport = 0\n", 2, "hl7.port: 0 is not a TCP port", nil),
        ("[hl7]\nallowed_senders = [\"RIS^\"]\n", 2, "cannot read \"RIS^\"", "APPLICATION^FACILITY"),
        ("[hl7]\nallowed_hosts = [\"10.1.2.0/33\"]\n", 2, "cannot read \"10.1.2.0/33\"", nil),
        ("[hl7]\nmax_message_size = \"1KB\"\n", 2, "hl7.max_message_size: 1KB is out of range", nil),
        ("[hl7]\nretention = \"1h\"\n", 2, "hl7.retention: 1h is too short", "at least 1d"),
        ("[hl7]\naccession_number = \"OBR-4\"\n", 2, "\"OBR-4\" is not OBR-3 nor OBR-18", nil),
        ("[site]\nuid_root = \"1.2.x\"\n", 2, "site.uid_root: \"1.2.x\" is not a UID root", nil),
        ("[hl7]\nport = 2575\n[hl7.tls]\ncertificate = \"/nonexistent.pem\"\n", 4, "needs both certificate and key", nil),
        ("[hl7]\n[hl7.tls]\ncertificat = \"/x.pem\"\n", 3, "unknown key 'certificat' in [hl7.tls]", "did you mean 'certificate'?"),
        ("[dicom.tls]\ncertificate = \"CERT.pem\"\nkey = \"KEY.pem\"\n", 2,
         "[dicom.tls] requires client certificates by default, and needs a ca", "require_client_certificate = false"),
        ("[dicom.tls]\ncertificate = \"CERT.pem\"\nkey = \"KEY.pem\"\nrequire_client_certificate = true\n", 4,
         "needs a ca to check the clients' certificates", nil),
        ("[dicom]\nport = 0\n", 2, "dicom.port: 0 turns the clear port off, and there is no [dicom.tls]", "add [dicom.tls]"),
        ("[dicom.tls]\nport = 70000\ncertificate = \"CERT.pem\"\nkey = \"KEY.pem\"\nca = \"CERT.pem\"\n", 2,
         "dicom.tls.port: 70000 is not a TCP port", "2762"),
        ("[dicom]\nport = 2762\n[dicom.tls]\nport = 2762\ncertificate = \"CERT.pem\"\nkey = \"KEY.pem\"\nca = \"CERT.pem\"\n", 4,
         "2762 is the clear port too", nil),
        ("[dicom.tls]\ncertificate = \"CERT.pem\"\nkey = \"KEY.pem\"\nrequire_client_certficate = false\n", 4,
         "unknown key 'require_client_certficate' in [dicom.tls]", "did you mean 'require_client_certificate'?"),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"h\"\nport = 104\ntls = true\n", 5,
         "ae.0.tls: needs a CA to check the peer's certificate", "ca in [dicom.tls]"),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"h\"\nport = 104\nca = \"CERT.pem\"\n", 5, "ae.0.ca: only applies with tls = true", nil),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"h\"\nport = 104\ntls = true\nca = \"/nonexistent-ca.pem\"\n", 6,
         "cannot read /nonexistent-ca.pem", nil),
        ("[destinations.archive]\nurl = \"not a url\"\n", 2, "expected a URL", "https://"),
        ("[dicom]\nport = = 3\n", 2, "TOML syntax", nil),
        ("[upload]\nbandwidth = \"fast\"\n", 2, "upload.bandwidth: expected a bandwidth", "\"40Mbit\""),
        ("[upload]\nbandwidth_schedule = [\"8h-18h 1Mbit\"]\n", 2, "cannot read \"8h-18h 1Mbit\"", "08:00-18:00"),
        ("[upload]\nparallel = 0\n", 2, "upload.parallel: 0 is out of range", "1 to 64"),
        ("[upload]\nchunk_max_bytes = \"1KB\"\n", 2, "upload.chunk_max_bytes: 1KB is out of range", "64KiB"),
        ("[upload]\nretry_min = \"1m\"\nretry_max = \"10s\"\n", 3, "retry_min is longer than retry_max", nil),
        ("[destinations.archive]\nurl = \"ftp://dc.example/x\"\n", 2, "expected a URL", nil),
        ("[destinations.archive]\nurl = \"tls://dc.example:6514\"\n", 2, "is not an http(s) URL", nil),
        ("[destinations.archive]\n\nca = \"CERT.pem\"\n", 3, "[destinations.archive] has no url", "url ="),
        ("[destinations.archive]\nurl = \"https://dc.example/dw\"\nclient_cert = \"/nonexistent/site.pem\"\nclient_key = \"KEY.pem\"\n",
         3, "/nonexistent/site.pem is not readable", "read access"),
        ("[destinations.archive]\nurl = \"https://dc.example/dw\"\nclient_key = \"KEY.pem\"\n",
         3, "client_cert and client_key go together", nil),
        ("[destinations.archive]\nurl = \"http://dc.example/dw\"\nca = \"CERT.pem\"\n", 2, "TLS files are set", "https://"),
        ("[destinations.archive]\nurl = \"https://dc.example/dw\"\nca = \"/etc/hosts\"\n", 3, "no PEM certificate", "BEGIN CERTIFICATE"),
        ("[destinations.archive]\nurl = \"https://dc.example/dw\"\nca = \"/tmp\"\n", 3, "not a regular file", nil),
        ("[destinations.archive]\nurl = \"https://dc.example/dw\"\nclient_cert = \"CERT.pem\"\nclient_key = \"CERT.pem\"\n",
         4, "not a PEM private key", "PRIVATE KEY"),
        ("[destinations.archive]\nurl = \"https://dc.example/dw\"\nmodalites = [\"CT\"]\n", 3,
         "unknown key 'modalites'", "did you mean 'modalities'?"),
        ("[site]\nissuer_of_patient_id = \"A\\\\B\"\n", 2, "cannot be filled into IssuerOfPatientID", nil),
        ("[[community]]\nae_title = \"MIRC\"\ndestination = \"hub\"\n", 3, "no [destinations.hub]", nil),
        ("[destinations.c]\nurl = \"http://h/dw\"\n[[community]]\nae_title = \"PASSERELLE\"\ndestination = \"c\"\n",
         4, "already the storage AE title", "its own called AE title"),
        ("[destinations.c]\nurl = \"http://h/dw\"\n[[community]]\nae_title = \"M\"\ndestination = \"c\"\nquery_timeout = \"1ms\"\n",
         6, "community.0.query_timeout: 1ms is too short", nil),
        ("[destinations.c]\nurl = \"http://h/dw\"\n[[community]]\nae_title = \"M\"\ndestination = \"c\"\nmax_results = 0\n",
         6, "community.0.max_results: 0 is out of range", "1 to 100000"),
        ("[[community]]\n\nexclude_own_site = true\n", 3, "lacks ae_title or destination", "ae_title ="),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"pacs\"\nport = 0\n", 4, "ae.0.port: 0 is not a TCP port", nil),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"pacs\"\n", 2, "lacks title, host or port", "port = 104"),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"a\"\nport = 104\n[[ae]]\ntitle = \"PACS\"\nhost = \"b\"\nport = 104\n",
         6, "PACS is listed twice", nil),
        ("[[site_directory]]\nid = 1\nemitter = \"e\"\nname = \"n\"\nissuer_of_patient_id = \"X\"\n"
         + "[[site_directory]]\nid = 2\nemitter = \"f\"\nname = \"m\"\nissuer_of_patient_id = \"X\"\n",
         10, "names two sites", "unique"),
        ("[[site_directory]]\nid = 1\nemitter = \"e\"\nname = \"n\"\n", 2, "has no issuer_of_patient_id", nil),
        ("[spool]\ncache_retention = \"a day\"\n", 2, "spool.cache_retention: expected a duration", nil),
        ("[consent]\ndefault = \"ask\"\n", 2, "consent.default: \"ask\" is not a consent rule", "\"hold\""),
        ("[destinations.community]\nurl = \"http://h/dw\"\nwithdraw = \"purge\"\n", 3,
         "\"purge\" is not a withdrawal method", "dicomweb-delete"),
        ("[destinations.archive]\nurl = \"http://h/dw\"\nwithdraw = \"orthanc\"\n", 3,
         "only a shared destination withdraws studies", "shared = true"),
        ("[destinations.community]\nurl = \"http://h/dw\"\northanc_url = \"ftp://h/\"\n", 3,
         "orthanc_url: expected a URL", nil),
        ("[backfill]\nparallel = 0\n", 2, "backfill.parallel: 0 is out of range", "1 to 16"),
        ("[backfill]\n\nschedule = [\"nights\"]\n", 3, "cannot read \"nights\"", "sat-sun 00:00-24:00"),
        ("[backfill]\npause_below_free = \"plenty\"\n", 2, "expected a percentage or a size", nil),
        ("[backfill]\nmax_studies_per_our = 10\n", 2, "unknown key", "max_studies_per_hour"),
        ("[[ae]]\ntitle = \"PACS\"\nhost = \"h\"\nport = 104\nretrieve = \"fetch\"\n", 5,
         "\"fetch\" is not a retrieval method", "\"get\""),
        ("[backfill]\nretry_delay = \"10ms\"\n", 2, "backfill.retry_delay: 10ms is too short", nil),
        ("[[ae]]\ntitle = \"CT1\"\nhost = \"h\"\nport = 104\nhosts = [\"10.1.2.0/33\"]\n", 5,
         "\"10.1.2.0/33\" is not an address or a network", "10.1.4.0/24"),
        ("[dicom]\ncheck_calling_host = true\n\n[[ae]]\ntitle = \"CT1\"\nhost = \"no-such-host.invalid\"\nport = 104\n", 6,
         "no-such-host.invalid does not resolve", "hosts = "),
    ] as [(String, Int, String, String?)])
    func mistakesAreReportedWithFileAndLine(text: String, line: Int, message: String, hint: String?) throws {
        let pem = try TestPEM.files()
        let text = text.replacingOccurrences(of: "CERT.pem", with: pem.certificate)
            .replacingOccurrences(of: "KEY.pem", with: pem.key)
        do {
            _ = try ConfigurationLoader.parse(text: text, file: "passerelle.toml")
            Issue.record("accepted an invalid configuration")
        } catch {
            #expect(error.file == "passerelle.toml")
            #expect(error.line == line)
            #expect(error.message.contains(message), "\(error)")
            if let hint { #expect(error.hint?.contains(hint) == true, "\(error)") }
            #expect(error.description.hasPrefix("passerelle.toml:\(line): "))
        }
    }

    @Test func readsUploadAndDestinations() throws {
        let pem = try TestPEM.files()
        let configuration = try ConfigurationLoader.parse(text: """
            [site]
            issuer_of_patient_id = "CHR-ORLEANS"

            [upload]
            stable_after = "2s"
            chunk_max_bytes = "8MiB"
            chunk_max_instances = 50
            parallel = 2
            bandwidth = "40Mbit"
            bandwidth_schedule = ["08:00-18:00 8Mbit"]
            retry_min = "500ms"
            retry_max = "1m"
            fill_issuer_of_patient_id = false

            [destinations.archive]
            url = "https://dc.example/dicom-web"
            ca = "\(pem.certificate)"
            client_cert = "\(pem.certificate)"
            client_key = "\(pem.key)"
            token = "secret"

            [destinations.community]
            url = "http://hub.example/community/dicom-web"
            calling_aets = ["CT1"]
            modalities = ["CT", "MR"]
            exclude_modalities = ["SR"]
            sop_classes = ["1.2.840.10008.5.1.4.1.1.2"]
            """, file: "p.toml")
        let upload = configuration.upload
        #expect(upload.stableAfter == .seconds(2))
        #expect(upload.chunkMaxBytes == 8 << 20)
        #expect(upload.chunkMaxInstances == 50 && upload.parallel == 2)
        #expect(upload.bandwidth == 5_000_000)
        #expect(upload.bandwidthSchedule == [BandwidthWindow(startMinute: 480, endMinute: 1080, bytesPerSecond: 1_000_000)])
        #expect(upload.retryMin == .milliseconds(500) && upload.retryMax == .seconds(60))
        #expect(!upload.fillIssuerOfPatientID)
        #expect(configuration.destinations.map(\.name) == ["archive", "community"])
        let archive = configuration.destinations[0], community = configuration.destinations[1]
        #expect(archive.url.absoluteString == "https://dc.example/dicom-web")
        #expect(archive.ca == pem.certificate && archive.token == "secret")
        #expect(archive.clientCertificate == pem.certificate && archive.clientKey == pem.key)
        #expect(community.callingAETitles == ["CT1"] && community.modalities == ["CT", "MR"])
        #expect(community.excludeModalities == ["SR"] && community.sopClasses == ["1.2.840.10008.5.1.4.1.1.2"])
    }

    @Test func readsCommunitiesAEsAndTheSiteDirectory() throws {
        let configuration = try ConfigurationLoader.parse(text: """
            [spool]
            cache_retention = "2d"

            [destinations.community]
            url = "https://dc.example/community/dicom-web"
            upload = false

            [[community]]
            ae_title = "MIRC"
            destination = "community"

            [[community]]
            ae_title = "HISTO"
            destination = "community"
            exclude_own_site = false
            query_timeout = "3s"
            retrieve_timeout = "2m"
            max_results = 50

            [[ae]]
            title = "PACS"
            host = "10.1.2.3"
            port = 104

            [[site_directory]]
            id = 401
            emitter = "cstrs37000"
            name = "CHRU Tours"
            issuer_of_patient_id = "CHRU-TOURS"
            """, file: "p.toml")
        #expect(configuration.spool.cacheRetention == .seconds(2 * 86_400))
        #expect(configuration.destinations.map(\.upload) == [false])
        #expect(configuration.communities.map(\.aeTitle) == ["MIRC", "HISTO"])
        #expect(configuration.communities[0].excludeOwnSite)
        #expect(configuration.communities[0].queryTimeout == .seconds(10))
        #expect(configuration.communities[0].maxResults == 1000)
        #expect(!configuration.communities[1].excludeOwnSite)
        #expect(configuration.communities[1].queryTimeout == .seconds(3))
        #expect(configuration.communities[1].retrieveTimeout == .seconds(120))
        #expect(configuration.communities[1].maxResults == 50)
        #expect(configuration.knownAEs == [KnownAE(title: "PACS", host: "10.1.2.3", port: 104,
                                                   hosts: [AddressRange("10.1.2.3")!])])
        #expect(configuration.siteDirectory == [SiteDirectoryEntry(id: 401, emitter: "cstrs37000", name: "CHRU Tours",
                                                                   issuerOfPatientID: "CHRU-TOURS")])
    }

    @Test func sharedDestinationsAndConsent() throws {
        let configuration = try ConfigurationLoader.parse(text: """
            [site]
            issuer_of_patient_id = "CHR-ORLEANS"
            [consent]
            default = "hold"
            [destinations.archive]
            url = "https://dc.example/archive/dicom-web"
            [destinations.community]
            url = "https://dc.example/orthanc/dicom-web/"
            withdraw = "orthanc"
            [destinations.regional]
            url = "https://dc.example/regional/dicom-web"
            withdraw = "dicomweb-delete"
            [destinations.mirror]
            url = "https://dc.example/mirror/dicom-web"
            shared = true
            orthanc_url = "https://dc.example/rest"
            withdraw = "orthanc"
            [[community]]
            ae_title = "MIRC"
            destination = "regional"
            """, file: "passerelle.toml")
        let byName = Dictionary(uniqueKeysWithValues: configuration.destinations.map { ($0.name, $0) })
        #expect(byName["archive"]?.shared == false)
        #expect(byName["community"]?.shared == true)  // by its name
        #expect(byName["regional"]?.shared == true)  // a [[community]] points at it
        #expect(byName["mirror"]?.shared == true)
        #expect(byName["community"]?.withdraw == .orthanc(URL(string: "https://dc.example/orthanc")!))
        #expect(byName["regional"]?.withdraw == .dicomwebDelete)
        #expect(byName["mirror"]?.withdraw == .orthanc(URL(string: "https://dc.example/rest")!))
        #expect(byName["archive"]?.withdraw == .manual)
        #expect(configuration.consent.default == .hold)
        let rules = configuration.sharingRules
        #expect(rules.sharedDestinations == ["community", "regional", "mirror"])
        #expect(rules.holdUntilInformed && rules.siteIssuer == "CHR-ORLEANS")

        let opted = try ConfigurationLoader.parse(text: """
            [destinations.community]
            url = "https://dc.example/dicom-web"
            shared = false
            """, file: "passerelle.toml")
        #expect(opted.destinations[0].shared == false)
        #expect(opted.consent.default == .share)
    }

    @Test func rightsRequestsOnTheStatusSocket() throws {
        let add = try StatusRequest.parse(#"{"command":"opposition_add","patient":"P1","by":"dpo","reason":"letter"}"#)
        #expect(add == .rights(.addOpposition(.init(patient: "P1"), by: "dpo", reason: "letter")))
        #expect(try StatusRequest.parse(add.line) == add)
        let share = StatusRequest.rights(.emergencyShare(study: "1.2.3", by: "Dr A", reason: "trauma"))
        #expect(try StatusRequest.parse(share.line) == share)
        let informed = StatusRequest.rights(.consentInformed(.init(patient: "P", issuer: "X"), by: "desk"))
        #expect(try StatusRequest.parse(informed.line) == informed)
        #expect(throws: StatusError.self) { try StatusRequest.parse(#"{"command":"opposition_add","patient":"P1"}"#) }
        #expect(throws: StatusError.self) { try StatusRequest.parse(#"{"command":"share_emergency","study":"1","by":"a"}"#) }
    }

    @Test func readsTheBackfillSectionAndItsRequests() throws {
        #expect(try ConfigurationLoader.parse(text: "", file: "p.toml").backfill == BackfillSettings())
        let settings = try ConfigurationLoader.parse(text: """
            [backfill]
            parallel = 4
            schedule = ["20:00-07:00", "sat-sun 00:00-24:00"]
            max_studies_per_hour = 120
            pause_below_free = "50GiB"
            pause_above_queue = 5000
            find_limit = 500
            """, file: "p.toml").backfill
        #expect(settings.parallel == 4)
        #expect(settings.schedule.map(\.text) == ["20:00-07:00", "sat-sun 00:00-24:00"])
        #expect(settings.maxStudiesPerHour == 120)
        #expect(settings.pauseBelowFree == .bytes(50 << 30))
        #expect(settings.pauseAboveQueue == 5000)
        #expect(settings.findLimit == 500)
        let aes = try ConfigurationLoader.parse(text: """
            [[ae]]
            title = "PACS"
            host = "10.1.2.3"
            port = 104
            retrieve = "get"

            [[ae]]
            title = "VIEWER"
            host = "10.1.2.4"
            port = 104
            """, file: "p.toml").knownAEs
        #expect(aes.map(\.retrieve) == [.get, .move])
        #expect(aes.map { $0.hosts.map(\.description) } == [["10.1.2.3"], ["10.1.2.4"]])
        let bound = try ConfigurationLoader.parse(text: """
            [dicom]
            check_calling_host = true

            [[ae]]
            title = "CT1"
            host = "localhost"
            port = 104

            [[ae]]
            title = "MR1"
            host = "10.1.2.5"
            port = 104
            hosts = ["10.1.2.5", "10.1.4.0/24"]
            """, file: "p.toml")
        #expect(bound.dicom.checkCallingHost)
        #expect(bound.knownAEs[0].hosts.contains { $0.contains("127.0.0.1") || $0.contains("::1") })
        #expect(bound.knownAEs[1].hosts.map(\.description) == ["10.1.2.5", "10.1.4.0/24"])
        for request: StatusRequest in [
            .backfill(.start(.init(source: "PACS", since: "2024-01-01", until: nil, modalities: ["CT"]), windows: ["22:00-06:00"])),
            .backfill(.pause(job: nil)), .backfill(.resume(job: 3)), .backfill(.cancel(job: 2)), .backfill(.status),
            .backfill(.survey(kind: "reconcile", .init(source: "PACS", since: "20240101"))),
            .backfill(.surveyResult(id: 7)), .backfill(.fix(survey: 7)),
        ] {
            #expect(try StatusRequest.parse(request.line) == request, "\(request.line)")
        }
        #expect(throws: StatusError.self) { try StatusRequest.parse(#"{"command":"backfill_start"}"#) }
        #expect(throws: StatusError.self) { try StatusRequest.parse(#"{"command":"backfill_survey","kind":"x","source":"P"}"#) }
    }

    @Test func dropInsOverrideTheMainFileKeyByKey() throws {
        let directory = NSTemporaryDirectory() + "conf-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/conf.d", withIntermediateDirectories: true)
        try "[dicom]\nae_title = \"MAIN\"\nport = 2000\n".write(toFile: directory + "/passerelle.toml", atomically: true, encoding: .utf8)
        try "[dicom]\nport = 3000\n".write(toFile: directory + "/conf.d/10-port.toml", atomically: true, encoding: .utf8)
        let configuration = try ConfigurationLoader.load(path: directory + "/passerelle.toml")
        #expect(configuration.dicom.aeTitle == "MAIN")
        #expect(configuration.dicom.port == 3000)

        try "[dicom]\nbogus = 1\n".write(toFile: directory + "/conf.d/20-bad.toml", atomically: true, encoding: .utf8)
        #expect {
            try ConfigurationLoader.load(path: directory + "/passerelle.toml")
        } throws: { error in
            (error as? ConfigurationError)?.file.hasSuffix("conf.d/20-bad.toml") == true
        }
    }

    @Test func readsTheHL7Section() throws {
        let configuration = try ConfigurationLoader.parse(text: """
            [site]
            emitter = "cstrs37000"

            [hl7]
            port = 2576
            allowed_senders = ["RIS", "PAS^CHRU"]
            allowed_hosts = ["10.1.2.0/24", "::1"]
            max_message_size = "2MiB"
            idle_timeout = "5m"
            """, file: "p.toml")
        let hl7 = try #require(configuration.hl7)
        #expect(hl7.port == 2576)
        #expect(hl7.bind == "0.0.0.0")
        #expect(hl7.maxMessageSize == 2 << 20)
        #expect(hl7.idleTimeout == .seconds(300))
        #expect(hl7.facility == "cstrs37000")
        #expect(hl7.allowedSenders.map(\.description) == ["RIS", "PAS^CHRU"])
        #expect(hl7.allowedSenders[0].matches(application: "RIS", facility: "ANY"))
        #expect(!hl7.allowedSenders[1].matches(application: "PAS", facility: "OTHER"))
        #expect(hl7.allowedHosts[0].contains("10.1.2.77"))
        #expect(hl7.allowedHosts[0].contains("::ffff:10.1.2.77"))
        #expect(!hl7.allowedHosts[0].contains("10.1.3.1"))
        #expect(hl7.allowedHosts[1].contains("::1"))
        #expect(!hl7.allowedHosts[1].contains("127.0.0.1"))
        #expect(try ConfigurationLoader.parse(text: "", file: "p.toml").hl7 == nil)
        #expect(try ConfigurationLoader.parse(text: "[hl7]\n", file: "p.toml").hl7 == HL7Settings())
    }

    @Test func theShippedDefaultFileIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../etc/passerelle.toml").standardizedFileURL.path
        let configuration = try ConfigurationLoader.load(path: path)
        #expect(configuration.spool.path == "/var/lib/passerelle")
        #expect(configuration.dicom.aeTitle == "PASSERELLE")
    }
}
