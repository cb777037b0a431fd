/// What Passerelle announces as its implementation (PS3.7 §D.3.3.2, PS3.10 §7.1).
public enum Implementation {
    /// Fixed UUID-derived UID (PS3.5 §B.2), chosen once for Passerelle; ≤ 64 characters.
    public static let classUID = "2.25.240651832411580226383624458203157428719"
    /// ≤ 16 characters (SH).
    public static let versionName = "PASSERELLE_01"
}
