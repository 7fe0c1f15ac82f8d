/// Redis Cluster's key → slot mapping: CRC16 (XMODEM) of the key, or of its hash tag, modulo
/// 16384. The hash tag is the part between the first `{` and the first `}` after it, when that
/// part is not empty: `spikegate:inflight:{alice}` and `{alice}:cart` share a slot.
public enum RedisHashSlot {
    /// Slots in a Redis Cluster.
    public static let count = 16_384

    /// The slot of `key`.
    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { Self.of(bytes: $0) }
    }

    /// The slot of the key whose bytes are `bytes`.
    public static func of(bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let hashed = Self.hashTag(in: bytes) ?? (0..<bytes.count)
        var crc: UInt16 = 0
        for index in hashed {
            crc = (crc << 8) ^ Self.table[Int((crc >> 8) ^ UInt16(bytes[index])) & 0xFF]
        }
        return Int(crc) & (Self.count - 1)
    }

    /// The range of the hash tag's bytes, if the key has a non-empty one.
    private static func hashTag(in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "{")) else {
            return nil
        }
        guard let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else {
            return nil
        }
        return (open + 1)..<close
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), one entry per byte value.
    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
