import GateCore
import Testing

/// The image CAPTCHA: a valid PNG, drawn the same way from the same seed, and challenges that
/// take the characters (any case) once.
@Suite struct CaptchaTests {
    /// The chunks of a PNG, each checked against its CRC.
    static func chunks(of png: [UInt8]) throws -> [(type: String, data: [UInt8])] {
        try #require(png.count > 8 && Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func word(_ at: Int) -> Int { png[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        var chunks: [(String, [UInt8])] = []
        var at = 8
        while at < png.count {
            let length = word(at)
            let typeAndData = Array(png[at + 4..<at + 8 + length])
            #expect(UInt32(word(at + 8 + length)) == Self.crc32(typeAndData), "CRC of chunk at \(at)")
            chunks.append((String(decoding: typeAndData[0..<4], as: UTF8.self), Array(typeAndData[4...])))
            at += 12 + length
        }
        return chunks
    }

    /// CRC-32 written out bit by bit here, independent of the encoder's table.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
            }
        }
        return ~crc
    }

    /// Inflates a zlib stream of stored blocks (all the encoder writes) and checks its Adler-32.
    static func inflateStored(_ stream: [UInt8]) throws -> [UInt8] {
        try #require(stream.count >= 6)
        #expect((Int(stream[0]) << 8 | Int(stream[1])) % 31 == 0, "zlib header check bits")
        var out: [UInt8] = []
        var at = 2
        while true {
            let header = stream[at]
            try #require(header & 0b110 == 0, "only stored blocks expected")
            let length = Int(stream[at + 1]) | Int(stream[at + 2]) << 8
            let complement = Int(stream[at + 3]) | Int(stream[at + 4]) << 8
            #expect(length ^ complement == 0xFFFF)
            out += stream[at + 5..<at + 5 + length]
            at += 5 + length
            if header & 1 == 1 {
                break
            }
        }
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in out {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        let stored = stream[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(stored == b << 16 | a)
        return out
    }

    @Test func thePNGHoldsThePixelsItWasGiven() throws {
        let pixels = CaptchaImage.pixels(text: "AC3XY", seed: 42)
        let png = PNGEncoder.grayscale(width: CaptchaImage.width, height: CaptchaImage.height, pixels: pixels)
        let chunks = try Self.chunks(of: png)
        #expect(chunks.map(\.type) == ["IHDR", "IDAT", "IEND"])
        #expect(chunks[0].data == [0, 0, 0, 200, 0, 0, 0, 70, 8, 0, 0, 0, 0])
        let raw = try Self.inflateStored(chunks[1].data)
        #expect(raw.count == (200 + 1) * 70)
        var decoded: [UInt8] = []
        for row in 0..<70 {
            #expect(raw[row * 201] == 0, "filter type of row \(row)")
            decoded += raw[row * 201 + 1..<(row + 1) * 201]
        }
        #expect(decoded == pixels)
        // A body bigger than one stored block (65,535 bytes) is split into several.
        let large = [UInt8](repeating: 7, count: 300 * 300)
        let largeChunks = try Self.chunks(of: PNGEncoder.grayscale(width: 300, height: 300, pixels: large))
        #expect(try Self.inflateStored(largeChunks[1].data).count == 301 * 300)
    }

    @Test func theSameSeedDrawsTheSameImageAndTheTextLeavesInk() {
        let first = CaptchaImage.pixels(text: "MNP47", seed: 7)
        #expect(CaptchaImage.pixels(text: "MNP47", seed: 7) == first)
        #expect(CaptchaImage.pixels(text: "MNP47", seed: 8) != first)
        // Dark pixels: the glyphs (plus some lines and specks) — far more than an empty text's.
        let dark = first.filter { $0 < 100 }.count
        let noiseOnly = CaptchaImage.pixels(text: "", seed: 7).filter { $0 < 100 }.count
        #expect(dark > noiseOnly + 800, "\(dark) dark pixels with text, \(noiseOnly) without")
    }

    @Test func everyCharacterOfTheAlphabetHasAGlyphAndRandomTextsUseOnlyThem() {
        var random = SplitMix64(seed: 1)
        for _ in 0..<200 {
            let text = CaptchaImage.randomText(using: &random)
            #expect(text.count == 5)
            #expect(text.allSatisfy(CaptchaImage.alphabet.contains))
        }
        for character in CaptchaImage.alphabet {
            let alone = CaptchaImage.pixels(text: String(character), seed: 3).filter { $0 < 100 }.count
            let none = CaptchaImage.pixels(text: "", seed: 3).filter { $0 < 100 }.count
            #expect(alone > none + 100, "\(character) leaves no ink")
        }
    }

    @Test func aCaptchaChallengeTakesItsCharactersInAnyCaseOnce() throws {
        var book = ChallengeBook()
        let now = MonotonicInstant(nanoseconds: 1_000_000_000)
        let expires = now + .seconds(60)
        for id in ["c1", "c2"] {
            let issued = book.issue(.init(id: id, difficulty: 0, client: "10.0.0.1", route: "r", expires: expires, answer: "AC3XY", seed: 9), now: now)
            #expect(issued)
        }
        // Looking at the image does not use the challenge; another client cannot look.
        #expect(book.peek(id: "c1", client: "10.0.0.1", now: now)?.seed == 9)
        #expect(book.peek(id: "c1", client: "10.0.0.2", now: now) == nil)
        #expect(book.peek(id: "c1", client: "10.0.0.1", now: expires) == nil)
        let right = book.redeem(id: "c1", nonce: "ac3xy", client: "10.0.0.1", now: now)
        #expect(try right.get().id == "c1")
        let replayed = book.redeem(id: "c1", nonce: "AC3XY", client: "10.0.0.1", now: now)
        #expect(replayed == .failure(.unknown))
        // A wrong guess uses the image up.
        let wrong = book.redeem(id: "c2", nonce: "AC3XX", client: "10.0.0.1", now: now)
        #expect(wrong == .failure(.wrongSolution))
        let again = book.redeem(id: "c2", nonce: "AC3XY", client: "10.0.0.1", now: now)
        #expect(again == .failure(.unknown))
    }
}
