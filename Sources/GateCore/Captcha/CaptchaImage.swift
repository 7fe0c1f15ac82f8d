/// An image CAPTCHA: a few characters drawn from a 5×7 bitmap font, each scaled, sheared and
/// displaced on its own, the whole row bent by a wave, then crossed by lines and sprinkled with
/// specks. Pure: the randomness comes from the seed, so the image of a challenge can be drawn
/// again whenever it is asked for (the gateway keeps the answer and the seed, not the pixels).
public enum CaptchaImage {
    public static let width = 200
    public static let height = 70

    /// The characters used: no pair a person confuses (no O/0/Q, I/1/L, S/5, Z/2, B/8, G/6).
    public static let alphabet: [Character] = Array("ACDEFHJKMNPRTUVWXY3479")

    /// Five random characters of `alphabet`.
    public static func randomText<Generator: RandomNumberGenerator>(length: Int = 5, using generator: inout Generator) -> String {
        String((0..<length).map { _ in Self.alphabet.randomElement(using: &generator)! })
    }

    /// The PNG of `text` (characters of `alphabet`; others are left blank), distorted as `seed` says.
    public static func png(text: String, seed: UInt64) -> [UInt8] {
        PNGEncoder.grayscale(width: Self.width, height: Self.height, pixels: Self.pixels(text: text, seed: seed))
    }

    /// The grayscale pixels (0 black … 255 white), row by row.
    public static func pixels(text: String, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        var pixels = [UInt8](repeating: 255, count: Self.width * Self.height)
        let characters = Array(text.uppercased())
        let waveAmplitude = Double.random(in: 2.5...5, using: &random)
        let wavePeriod = Double.random(in: 60...110, using: &random)
        let wavePhase = Double.random(in: 0...(2 * .pi), using: &random)
        let slot = Double(Self.width - 20) / Double(max(1, characters.count))
        for (index, character) in characters.enumerated() {
            guard let rows = Self.glyphs[character] else {
                continue
            }
            let scale = Double.random(in: 5.2...6.6, using: &random)
            let shear = Double.random(in: -0.35...0.35, using: &random)
            let left = 10 + Double(index) * slot + Double.random(in: -3...3, using: &random)
            let top = (Double(Self.height) - 7 * scale) / 2 + Double.random(in: -6...6, using: &random)
            let ink = UInt8.random(in: 10...90, using: &random)
            let glyphHeight = 7 * scale
            for y in max(0, Int(top) - 12)..<min(Self.height, Int(top + glyphHeight) + 12) {
                for x in max(0, Int(left) - 14)..<min(Self.width, Int(left + 5 * scale) + 14) {
                    let bent = Double(y) - waveAmplitude * _sin(2 * .pi * Double(x) / wavePeriod + wavePhase)
                    let v = (bent - top) / scale
                    let u = (Double(x) - left - shear * (bent - top - glyphHeight / 2)) / scale
                    guard u >= 0, v >= 0, u < 5, v < 7, rows[Int(v)][Int(u)] else {
                        continue
                    }
                    pixels[y * Self.width + x] = ink
                }
            }
        }
        // Lines across the text, and specks.
        for _ in 0..<Int.random(in: 4...6, using: &random) {
            let shade = UInt8.random(in: 40...150, using: &random)
            Self.line(
                from: (Int.random(in: 0..<Self.width / 3, using: &random), Int.random(in: 0..<Self.height, using: &random)),
                to: (Int.random(in: 2 * Self.width / 3..<Self.width, using: &random), Int.random(in: 0..<Self.height, using: &random)),
                shade: shade, thick: Bool.random(using: &random), pixels: &pixels
            )
        }
        for _ in 0..<(Self.width * Self.height / 16) {
            let at = Int.random(in: 0..<pixels.count, using: &random)
            pixels[at] = UInt8.random(in: 0...255, using: &random)
        }
        return pixels
    }

    private static func line(from start: (Int, Int), to end: (Int, Int), shade: UInt8, thick: Bool, pixels: inout [UInt8]) {
        var (x, y) = start
        let dx = abs(end.0 - x), dy = -abs(end.1 - y)
        let stepX = x < end.0 ? 1 : -1, stepY = y < end.1 ? 1 : -1
        var error = dx + dy
        while true {
            for offset in thick ? [0, 1] : [0] where y + offset < Self.height {
                pixels[(y + offset) * Self.width + x] = shade
            }
            if x == end.0 && y == end.1 {
                return
            }
            let doubled = 2 * error
            if doubled >= dy {
                error += dy
                x += stepX
            }
            if doubled <= dx {
                error += dx
                y += stepY
            }
        }
    }

    /// sin without Foundation (a CAPTCHA needs no more than a few digits).
    private static func _sin(_ angle: Double) -> Double {
        var x = angle.truncatingRemainder(dividingBy: 2 * .pi)
        if x > .pi {
            x -= 2 * .pi
        } else if x < -.pi {
            x += 2 * .pi
        }
        // Bhaskara-style rational approximation, then one refinement (error < 0.001).
        let y = 4 / .pi * x - 4 / (.pi * .pi) * x * abs(x)
        return 0.225 * (y * abs(y) - y) + y
    }

    /// The 5×7 glyphs of `alphabet`, `#` for ink.
    static let glyphs: [Character: [[Bool]]] = {
        let drawn: [Character: [String]] = [
            "A": [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
            "C": [" ####", "#    ", "#    ", "#    ", "#    ", "#    ", " ####"],
            "D": ["#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "],
            "E": ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
            "F": ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
            "H": ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
            "J": ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
            "K": ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"],
            "M": ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"],
            "N": ["#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #"],
            "P": ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "],
            "R": ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"],
            "T": ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
            "U": ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
            "V": ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "],
            "W": ["#   #", "#   #", "#   #", "# # #", "# # #", "## ##", "#   #"],
            "X": ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"],
            "Y": ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "],
            "3": ["#### ", "    #", "    #", " ### ", "    #", "    #", "#### "],
            "4": ["#   #", "#   #", "#   #", "#####", "    #", "    #", "    #"],
            "7": ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
            "9": [" ### ", "#   #", "#   #", " ####", "    #", "    #", " ### "],
        ]
        return drawn.mapValues { rows in rows.map { row in row.map { $0 == "#" } } }
    }()
}

/// SplitMix64: a small, fast generator whose whole sequence follows from its seed (for images
/// that must be drawn the same way twice). Not for secrets.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
