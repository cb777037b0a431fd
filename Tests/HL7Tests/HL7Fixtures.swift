import Foundation

/// Messages as senders write them: segments joined with CR, as bytes.
enum HL7Fixtures {
    static func bytes(_ segments: [String], separator: String = "\r") -> [UInt8] {
        Array((segments.joined(separator: separator) + separator).utf8)
    }

    static let adtA08Segments = [
        #"MSH|^~\&|EPIC|HOSP^1.2.250.1.1^ISO|PASSERELLE|RAD|20240312101500+0100||ADT^A08^ADT_A01|ADT00001|P|2.5.1|||AL|NE||UNICODE UTF-8"#,
        "EVN|A08|20240312101500",
        "PID|1||123456^^^HOSP^MR~987654^^^SSA^SS||DUPONT^Jean^Pierre^^M.||19700101|M|||12 rue de la Paix^^Paris^^75002^FRA||^PRN^PH^^33^1^42000000",
        "PV1|1|I|RAD^101^1^HOSP||||1234^SMITH^JOHN|||||||||||V0001",
    ]
    static let adtA08 = bytes(adtA08Segments)

    /// A small PDF, as an ED value carries it in base64.
    static let pdf = Array("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".utf8)

    static var oruR01Segments: [String] {
        [
            #"MSH|^~\&|LAB|HOSP|PACS|RAD|20240312101500||ORU^R01^ORU_R01|ORU00002|P|2.5"#,
            "PID|1||123456^^^HOSP^MR||DUPONT^JEAN",
            "OBR|1|ORD1|FIL1|71020^CHEST XRAY^CPT|||20240312090000",
            "OBX|1|TX|71020^REPORT^CPT|1|Findings: no acute disease.||||||F",
            #"OBX|2|TX|71020^REPORT^CPT|2|Impression: stable \T\ unchanged\.br\pressure 120\S\80 \F\ pulse 60.||||||F"#,
            "OBX|3|ED|PDF^Report^L||^application^pdf^Base64^\(Data(pdf).base64EncodedString())||||||F",
        ]
    }
    static var oruR01: [UInt8] { bytes(oruR01Segments) }

    /// `*` fields, `!` components, `@` repetitions, `#` escape, `$` subcomponents.
    static let customSeparators = bytes([
        "MSH*!@#$*SENDER*FAC*RECEIVER*RADFAC*20240312101500**ORM!O01*CUSTOM1*P*2.3",
        "PID*1**111!!!HOSP!MR@222!!!SSA!SS**MARTIN!Luc #F# Paul*",
        "OBR*1*A$B**CODE!TEXT",
    ])
}
