import NIOCore
import Testing
@testable import DICOMweb

@Suite struct STOWResponseTests {
    /// Shaped like Orthanc's answer to a STOW-RS with one stored (with warning) and one failed instance.
    static let json = """
    {
      "00081190": {"vr": "UR", "Value": ["http://hub/dicom-web/studies/1.2.3"]},
      "00081198": {"vr": "SQ", "Value": [
        {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
         "00081155": {"vr": "UI", "Value": ["1.2.3.4.2"]},
         "00081197": {"vr": "US", "Value": [272]}}
      ]},
      "00081199": {"vr": "SQ", "Value": [
        {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
         "00081155": {"vr": "UI", "Value": ["1.2.3.4.1"]},
         "00081190": {"vr": "UR", "Value": ["http://hub/dicom-web/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.1"]}},
        {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
         "00081155": {"vr": "UI", "Value": ["1.2.3.4.3"]},
         "00081196": {"vr": "US", "Value": [45056]}}
      ]}
    }
    """

    static let xml = """
    <?xml version="1.0" encoding="UTF-8"?>
    <!-- PS3.19 Native DICOM Model -->
    <NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">
      <DicomAttribute tag="00081190" vr="UR" keyword="RetrieveURL"><Value number="1">http://hub/a?b=1&amp;c=2</Value></DicomAttribute>
      <DicomAttribute tag="00081198" vr="SQ" keyword="FailedSOPSequence">
        <Item number="1">
          <DicomAttribute tag="00081150" vr="UI" keyword="ReferencedSOPClassUID"><Value number="1">1.2.840.10008.5.1.4.1.1.7</Value></DicomAttribute>
          <DicomAttribute tag="00081155" vr="UI" keyword="ReferencedSOPInstanceUID"><Value number="1">1.2.3.4.2</Value></DicomAttribute>
          <DicomAttribute tag="00081197" vr="US" keyword="FailureReason"><Value number="1">43264</Value></DicomAttribute>
        </Item>
      </DicomAttribute>
      <DicomAttribute tag="00081199" vr="SQ" keyword="ReferencedSOPSequence">
        <Item number="1">
          <DicomAttribute tag="00081150" vr="UI"><Value number="1">1.2.840.10008.5.1.4.1.1.7</Value></DicomAttribute>
          <DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2.3.4.1</Value></DicomAttribute>
        </Item>
        <Item number="2">
          <DicomAttribute tag="00081155" vr="UI"><Value number="1"><![CDATA[1.2.3.4.3]]></Value></DicomAttribute>
          <DicomAttribute tag="00081196" vr="US"><Value number="1">45056</Value></DicomAttribute>
        </Item>
      </DicomAttribute>
    </NativeDicomModel>
    """

    @Test func jsonModel() throws {
        let response = try STOWResponse.parse(ByteBuffer(string: Self.json), contentType: "application/dicom+json")
        #expect(response.results == [
            "1.2.3.4.1": .stored(warning: nil),
            "1.2.3.4.2": .failed(reason: 0x0110),
            "1.2.3.4.3": .stored(warning: 0xB000),
        ])
        #expect(response.instances.first { $0.sopInstanceUID == "1.2.3.4.1" }?.sopClassUID == "1.2.840.10008.5.1.4.1.1.7")
    }

    @Test func jsonArrayWrapper() throws {
        let response = try STOWResponse.parse(ByteBuffer(string: "[" + Self.json + "]"), contentType: "application/json")
        #expect(response.instances.count == 3)
    }

    @Test func xmlModel() throws {
        let response = try STOWResponse.parse(ByteBuffer(string: Self.xml), contentType: "application/dicom+xml; charset=utf-8")
        #expect(response.results == [
            "1.2.3.4.1": .stored(warning: nil),
            "1.2.3.4.2": .failed(reason: 0xA900),
            "1.2.3.4.3": .stored(warning: 0xB000),
        ])
    }

    @Test(arguments: ["{", "[1]", "\"x\""])
    func badJSONIsPermanentInvalidResponse(body: String) {
        do {
            _ = try STOWResponse.parse(ByteBuffer(string: body), contentType: "application/dicom+json")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidResponse)
            #expect(error.kind == .permanent)
        }
    }

    @Test(arguments: ["<NativeDicomModel>", "<a></b>", "<NativeDicomModel><DicomAttribute/></NativeDicomModel>",
                      "<x>&bogus;</x>", "<Other/>"])
    func badXML(body: String) {
        #expect(throws: DICOMwebError.self) {
            try STOWResponse.parse(ByteBuffer(string: body), contentType: "application/dicom+xml")
        }
    }

    @Test func ok200MarksUnlistedAsStored() throws {
        let results = try STOWResponse.evaluate(status: 200, contentType: nil, body: ByteBuffer(), url: nil,
                                                requested: ["1.1", "1.2"])
        #expect(results == ["1.1": .stored(warning: nil), "1.2": .stored(warning: nil)])
    }

    @Test func accepted202MarksUnlistedAsUnreported() throws {
        let results = try STOWResponse.evaluate(status: 202, contentType: "application/dicom+json",
                                                body: ByteBuffer(string: Self.json), url: nil,
                                                requested: ["1.2.3.4.1", "1.2.3.4.2", "1.2.3.4.3", "9.9"])
        #expect(results["1.2.3.4.2"] == .failed(reason: 0x0110))
        #expect(results["1.2.3.4.3"] == .stored(warning: 0xB000))
        #expect(results["9.9"] == .unreported)
    }

    @Test func conflict409WithSequences() throws {
        let results = try STOWResponse.evaluate(status: 409, contentType: "application/dicom+xml",
                                                body: ByteBuffer(string: Self.xml), url: nil,
                                                requested: ["1.2.3.4.2"])
        #expect(results["1.2.3.4.2"] == .failed(reason: 0xA900))
    }

    @Test func conflict409WithoutBodyIsPermanent() {
        do {
            _ = try STOWResponse.evaluate(status: 409, contentType: nil, body: ByteBuffer(), url: "u", requested: ["1"])
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .permanent)
            #expect(error.status == 409)
        }
    }

    /// Orthanc 1.10's answer when one part is not a DICOM file it can read.
    @Test func badRequest400ListingStoredInstances() throws {
        let body = """
        {"00080005": {"Value": ["ISO_IR 100"], "vr": "CS"},
         "00081198": {"vr": "SQ"},
         "00081199": {"Value": [{"00081150": {"Value": ["1.2.840.10008.5.1.4.1.1.7"], "vr": "UI"},
                                 "00081155": {"Value": ["1.1"], "vr": "UI"}}], "vr": "SQ"}}
        """
        let results = try STOWResponse.evaluate(status: 400, contentType: "application/dicom+json",
                                                body: ByteBuffer(string: body), url: nil, requested: ["1.1", "1.2"])
        #expect(results == ["1.1": .stored(warning: nil), "1.2": .failed(reason: 0xC000)])
        #expect(throws: DICOMwebError.self) {
            try STOWResponse.evaluate(status: 400, contentType: "text/plain", body: ByteBuffer(string: "bad"),
                                      url: nil, requested: ["1.1"])
        }
    }

    @Test func failedWinsOverStored() throws {
        let both = STOWResponse(instances: [
            .init(sopClassUID: nil, sopInstanceUID: "1", result: .failed(reason: 0xC000)),
            .init(sopClassUID: nil, sopInstanceUID: "1", result: .stored(warning: nil)),
        ])
        #expect(both.results == ["1": .failed(reason: 0xC000)])
    }

    @Test(arguments: [(503, DICOMwebError.Kind.retryable), (413, .permanent), (401, .configuration)])
    func otherStatusesThrow(status: Int, kind: DICOMwebError.Kind) {
        do {
            _ = try STOWResponse.evaluate(status: status, contentType: "text/plain", body: ByteBuffer(string: "busy\n"),
                                          url: "http://dc/studies", requested: ["1"])
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == kind)
            #expect(error.description.contains("busy"))
        }
    }
}
