/// Value representations, PS3.5 §6.2 Table 6.2-1.
public enum VR: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ
    case SS, ST, SV, TM, UC, UI, UL, UN, UR, US, UT, UV

    /// Parses the two-character code found in explicit VR element headers.
    public init?(code0: UInt8, code1: UInt8) {
        guard let scalar0 = Unicode.Scalar(UInt32(code0)).map(Character.init),
              let scalar1 = Unicode.Scalar(UInt32(code1)).map(Character.init),
              code0 >= 0x41, code0 <= 0x5A, code1 >= 0x41, code1 <= 0x5A
        else { return nil }
        self.init(rawValue: String([scalar0, scalar1]))
    }

    /// In explicit VR these VRs have 2 reserved bytes and a 32-bit length (PS3.5 §7.1.2, Table 7.1-1).
    public var usesLongLength: Bool {
        switch self {
        case .OB, .OD, .OF, .OL, .OV, .OW, .SQ, .SV, .UC, .UN, .UR, .UT, .UV: return true
        default: return false
        }
    }

    /// Character-string VRs affected by Specific Character Set (PS3.5 §6.1.2.3); others are ASCII.
    public var usesSpecificCharacterSet: Bool {
        switch self {
        case .LO, .LT, .PN, .SH, .ST, .UC, .UT: return true
        default: return false
        }
    }

    /// Padding byte for odd-length values: NUL for UI and binary VRs, space for text (PS3.5 §6.2).
    public var paddingByte: UInt8 {
        switch self {
        case .UI, .OB, .OD, .OF, .OL, .OV, .OW, .UN, .SQ, .AT, .FD, .FL, .SL, .SS, .SV, .UL, .US, .UV: return 0x00
        default: return 0x20
        }
    }

    /// The two ASCII bytes written in an explicit VR header.
    public var code: (UInt8, UInt8) {
        let utf8 = Array(rawValue.utf8)
        return (utf8[0], utf8[1])
    }

    public var description: String { rawValue }
}
