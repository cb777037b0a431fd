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
    ] as [(String, Int, String, String?)])
    func mistakesAreReportedWithFileAndLine(text: String, line: Int, message: String, hint: String?) {
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
