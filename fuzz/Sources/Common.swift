// Shared by every harness: compiled into each fuzz binary beside its target file.

/// Reads typed values off the fuzzer's bytes, front to back. Running out is not an error:
/// missing bytes read as zero and strings as empty, so every input is a valid program.
struct FuzzInput {
    let bytes: [UInt8]
    private(set) var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - index }
    var isEmpty: Bool { remaining == 0 }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    mutating func uint16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    /// Up to `count` bytes.
    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, index + max(0, count))
        defer { index = end }
        return Array(bytes[index..<end])
    }

    /// Everything not read yet.
    mutating func rest() -> [UInt8] { take(remaining) }

    /// A length byte, then that many bytes as (lossy) UTF-8: invalid sequences stay in play.
    mutating func string(max: Int = 64) -> String {
        let count = Int(byte()) % (max + 1)
        return String(decoding: take(count), as: UTF8.self)
    }

    /// One of `choices`, picked by a byte.
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(byte()) % choices.count] }
}

/// Cuts `bytes` into chunks whose sizes cycle through `sizes` (each 1...), as TCP might.
func chunks(_ bytes: ArraySlice<UInt8>, sizes: [UInt8]) -> [ArraySlice<UInt8>] {
    let sizes = sizes.isEmpty ? [UInt8(255)] : sizes
    var result: [ArraySlice<UInt8>] = []
    var start = bytes.startIndex
    var turn = 0
    while start < bytes.endIndex {
        let end = min(bytes.endIndex, start + Int(sizes[turn % sizes.count]) + 1)
        result.append(bytes[start..<end])
        start = end
        turn += 1
    }
    return result
}

/// An invariant of the code under test does not hold: a finding, reported as a crash.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz invariant: \(message())") }
}

/// The libFuzzer entry: each target file defines `fuzzOne(_:)`.
@_cdecl("LLVMFuzzerTestOneInput")
public func llvmFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    fuzzOne(bytes)
    return 0
}
