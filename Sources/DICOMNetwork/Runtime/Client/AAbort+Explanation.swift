extension AAbort {
    /// "source service provider, reason unexpected PDU (2)".
    var explanation: String {
        let sourceText = switch source {
        case .serviceUser: "service user"
        case .reserved: "reserved source"
        case .serviceProvider: "service provider"
        case .unknown(let value): "unknown source \(value)"
        }
        let reasonText = switch reason {
        case .notSpecified: "not specified"
        case .unrecognizedPDU: "unrecognized PDU"
        case .unexpectedPDU: "unexpected PDU"
        case .unrecognizedPDUParameter: "unrecognized PDU parameter"
        case .unexpectedPDUParameter: "unexpected PDU parameter"
        case .invalidPDUParameterValue: "invalid PDU parameter value"
        case .unknown: "unknown reason"
        }
        return "source \(sourceText), reason \(reasonText) (\(reason.wireValue))"
    }
}
