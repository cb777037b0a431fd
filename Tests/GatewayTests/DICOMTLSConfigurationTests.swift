import Foundation
import Testing
@testable import Gateway

/// `[dicom.tls]`, `[dicom] port = 0` and `[[ae]] tls` as read from a file (their mistakes are
/// in `ConfigurationLoaderTests.mistakesAreReportedWithFileAndLine`).
@Suite struct DICOMTLSConfigurationTests {
    @Test func readsTheTLSListenerBesideTheClearOne() throws {
        let pem = try TestPEM.files()
        let configuration = try ConfigurationLoader.parse(text: """
            [dicom]
            port = 104

            [dicom.tls]
            port = 2762
            certificate = "\(pem.certificate)"
            key = "\(pem.key)"
            ca = "\(pem.certificate)"
            """, file: "p.toml")
        #expect(configuration.dicom.clearListener && configuration.dicom.port == 104)
        let tls = try #require(configuration.dicom.tls)
        #expect(tls.port == 2762)
        #expect(tls.listener == ListenerTLS(certificateFile: pem.certificate, privateKeyFile: pem.key,
                                            caFile: pem.certificate, requireClientCertificate: true))
        // The context builds from those files (the listener's, shared with [hl7.tls]).
        _ = try tls.listener.makeServerContext()
    }

    @Test func clientCertificatesMayBeLeftOptionalAndTheClearPortOff() throws {
        let pem = try TestPEM.files()
        let configuration = try ConfigurationLoader.parse(text: """
            [dicom]
            port = 0

            [dicom.tls]
            certificate = "\(pem.certificate)"
            key = "\(pem.key)"
            require_client_certificate = false
            """, file: "p.toml")
        #expect(!configuration.dicom.clearListener)
        #expect(configuration.dicom.tls?.port == 2762)
        #expect(configuration.dicom.tls?.listener.requireClientCertificate == false)
    }

    @Test func aeTLSTrustsItsOwnCAOrTheListenersAndPresentsTheListenersCertificate() throws {
        let pem = try TestPEM.files()
        let configuration = try ConfigurationLoader.parse(text: """
            [dicom.tls]
            certificate = "\(pem.certificate)"
            key = "\(pem.key)"
            ca = "\(pem.certificate)"

            [[ae]]
            title = "VIEWER"
            host = "10.1.2.4"
            port = 2762
            tls = true

            [[ae]]
            title = "PACS"
            host = "10.1.2.3"
            port = 2762
            tls = true
            ca = "/etc/hosts"

            [[ae]]
            title = "CT1"
            host = "10.1.2.5"
            port = 104
            tls = false
            """, file: "p.toml")
        let byTitle = Dictionary(uniqueKeysWithValues: configuration.knownAEs.map { ($0.title, $0) })
        #expect(byTitle["VIEWER"]?.tls == PeerTLS(caFile: pem.certificate, certificateFile: pem.certificate,
                                                  privateKeyFile: pem.key))
        #expect(byTitle["PACS"]?.tls?.caFile == "/etc/hosts")
        #expect(byTitle["CT1"]?.tls == nil)
        _ = try byTitle["VIEWER"]?.tls?.makeClientContext()
    }

    @Test func anAEMayUseTLSWithoutATLSListener() throws {
        let pem = try TestPEM.files()
        let configuration = try ConfigurationLoader.parse(text: """
            [[ae]]
            title = "PACS"
            host = "pacs.example"
            port = 2762
            tls = true
            ca = "\(pem.certificate)"
            """, file: "p.toml")
        // No [dicom.tls]: no certificate of ours to present.
        #expect(configuration.knownAEs.first?.tls == PeerTLS(caFile: pem.certificate))
        #expect(configuration.dicom.tls == nil && configuration.dicom.clearListener)
    }

    @Test func aTLSChangeNeedsARestart() throws {
        let pem = try TestPEM.files()
        let running = GatewayConfiguration()
        let next = try ConfigurationLoader.parse(text: """
            [dicom.tls]
            certificate = "\(pem.certificate)"
            key = "\(pem.key)"
            require_client_certificate = false
            """, file: "p.toml")
        #expect(next.restartRequiredChanges(from: running).contains("dicom.tls"))
    }
}
