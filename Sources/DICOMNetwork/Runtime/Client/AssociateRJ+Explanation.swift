extension AssociateRJ {
    /// "rejected permanently by the called AE: called AE title not recognized".
    var explanation: String {
        let result = switch result {
        case .rejectedPermanent: "rejected permanently"
        case .rejectedTransient: "rejected transiently"
        }
        let source: String
        let reasonText: String
        switch reason {
        case .serviceUser(let reason):
            source = "the called AE"
            reasonText = switch reason {
            case .noReason: "no reason given"
            case .applicationContextNameNotSupported: "application context name not supported"
            case .callingAETitleNotRecognized: "calling AE title not recognized"
            case .calledAETitleNotRecognized: "called AE title not recognized"
            }
        case .serviceProviderACSE(let reason):
            source = "the called AE's upper layer (ACSE)"
            reasonText = switch reason {
            case .noReason: "no reason given"
            case .protocolVersionNotSupported: "protocol version not supported"
            }
        case .serviceProviderPresentation(let reason):
            source = "the called AE's upper layer (presentation)"
            reasonText = switch reason {
            case .temporaryCongestion: "temporary congestion"
            case .localLimitExceeded: "local limit exceeded"
            }
        }
        return "\(result) by \(source): \(reasonText) "
            + "(result \(self.result.rawValue), source \(reason.sourceWireValue), reason \(reason.reasonWireValue))"
    }
}
