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

    @Test func theShippedDefaultFileIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../etc/passerelle.toml").standardizedFileURL.path
        let configuration = try ConfigurationLoader.load(path: path)
        #expect(configuration.spool.path == "/var/lib/passerelle")
        #expect(configuration.dicom.aeTitle == "PASSERELLE")
    }
}
