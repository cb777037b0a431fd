import Foundation

/// A self-signed EC certificate and its key (CN=passerelle-test, valid until 2126), written
/// to temporary files for configuration tests that need loadable PEM files.
enum TestPEM {
    static let certificate = """
-----BEGIN CERTIFICATE-----
MIIBjDCCATGgAwIBAgIUR+YOuSG07MV/QLfZ45BS8ov1fD8wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPcGFzc2VyZWxsZS10ZXN0MCAXDTI2MTEyMzIyMTA0N1oYDzIx
MjYxMDMwMjIxMDQ3WjAaMRgwFgYDVQQDDA9wYXNzZXJlbGxlLXRlc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAQaWcAlOHoJG1GYxPKToEABgh7gVKdj39kL6u/k
/zle9WF1Af7e89Tm4implyhbrQ6qEHxmwozPvM/0s3RdF11mo1MwUTAdBgNVHQ4E
FgQUADDtP2dq229Oa9GyZPsC/v4TpckwHwYDVR0jBBgwFoAUADDtP2dq229Oa9Gy
ZPsC/v4TpckwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAtN+I
OlsRKUrq7oV7yFixb7zLaIRx95pMuJrqglkXvN8CIQDLPCfvukxNrhGvqG3jyXqM
xCQYbRZL7unECXefV4p94Q==
-----END CERTIFICATE-----
"""
    static let privateKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0g76mONfsE8o088F
H2KliH/zQryv4L30tgkxx3p6vi6hRANCAAQaWcAlOHoJG1GYxPKToEABgh7gVKdj
39kL6u/k/zle9WF1Af7e89Tm4implyhbrQ6qEHxmwozPvM/0s3RdF11m
-----END PRIVATE KEY-----
"""

    /// Paths of the certificate and key written to a new temporary directory.
    static func files() throws -> (certificate: String, key: String) {
        let directory = NSTemporaryDirectory() + "pem-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificatePath = directory + "/site.pem", keyPath = directory + "/site.key"
        try certificate.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try privateKey.write(toFile: keyPath, atomically: true, encoding: .utf8)
        return (certificatePath, keyPath)
    }
}
