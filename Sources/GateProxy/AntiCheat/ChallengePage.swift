/// The challenge as an HTML page, for browsers (`Accept: text/html`): it solves the
/// proof-of-work in the page (a small SHA-256 in plain JavaScript, since `crypto.subtle` exists
/// only on secure origins), sends the solution to the verify path, which sets the pass cookie,
/// and then reloads a `GET` page or asks the user to send the form again.
enum ChallengePage {
    /// The start of both pages, up to the heading.
    private static func head(style: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
        <title>One moment</title>
        <style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
        \(style)#state{color:#555}</style></head>
        <body><h1>One moment, please</h1>
        """
    }

    static func html(id: String, difficulty: Int, verifyPath: String, method: String) -> String {
        let reload = method == "GET" ? "true" : "false"
        return """
            \(Self.head(style: ""))
            <p>Many requests came from your network. Your browser is solving a small puzzle to show it is a person's.</p>
            <p id="state">Working…</p>
            <script>
            const id = "\(id)", bits = \(difficulty), reload = \(reload);
            function sha256(bytes) {
              const k = new Uint32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
                0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,
                0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,
                0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,
                0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
                0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,
                0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
              const h = new Uint32Array([0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19]);
              const length = bytes.length, total = ((length + 9 + 63) >> 6) << 6, m = new Uint8Array(total);
              m.set(bytes); m[length] = 0x80;
              const view = new DataView(m.buffer); view.setUint32(total - 4, length * 8);
              const w = new Uint32Array(64), r = (x, n) => (x >>> n) | (x << (32 - n));
              for (let off = 0; off < total; off += 64) {
                for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
                for (let i = 16; i < 64; i++) {
                  const s0 = r(w[i-15], 7) ^ r(w[i-15], 18) ^ (w[i-15] >>> 3), s1 = r(w[i-2], 17) ^ r(w[i-2], 19) ^ (w[i-2] >>> 10);
                  w[i] = (w[i-16] + s0 + w[i-7] + s1) | 0;
                }
                let [a, b, c, d, e, f, g, hh] = h;
                for (let i = 0; i < 64; i++) {
                  const t1 = (hh + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i]) | 0;
                  const t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
                  hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
                }
                h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
              }
              return h;
            }
            function zeroBits(h) {
              let n = 0;
              for (const word of h) { if (word === 0) { n += 32; continue; } return n + Math.clz32(word); }
              return n;
            }
            const encoder = new TextEncoder();
            let nonce = 0;
            function work() {
              const end = nonce + 20000;
              for (; nonce < end; nonce++) {
                const candidate = nonce.toString(36);
                if (zeroBits(sha256(encoder.encode(id + ":" + candidate))) >= bits) {
                  document.getElementById("state").textContent = "Done, checking…";
                  fetch("\(verifyPath)?id=" + id + "&nonce=" + candidate, {credentials: "same-origin"}).then(answer => {
                    if (answer.ok && reload) { location.reload(); return; }
                    document.getElementById("state").textContent = answer.ok
                      ? "Thank you. Please send your request again."
                      : "That did not work; please reload the page.";
                  });
                  return;
                }
              }
              setTimeout(work, 0);
            }
            work();
            </script>
            <noscript><p>This check needs JavaScript.</p></noscript>
            </body></html>
            """
    }

    /// The image CAPTCHA page: the picture, a field for its characters; the answer goes to the
    /// verify path (which sets the pass cookie), then a `GET` page reloads; a wrong answer loads
    /// a fresh challenge (each image gets one try).
    static func captchaHTML(id: String, imagePath: String, verifyPath: String, method: String) -> String {
        let reload = method == "GET" ? "true" : "false"
        return """
            \(Self.head(style: "img{border:1px solid #ccc;image-rendering:pixelated;width:300px}input{font:inherit;letter-spacing:.2em;text-transform:uppercase}"))
            <p>Many requests came from your network. Please type the characters you see.</p>
            <form id="form" action="\(verifyPath)" method="get">
            <p><img src="\(imagePath)?id=\(id)" alt="characters to type" width="200" height="70"></p>
            <input type="hidden" name="id" value="\(id)">
            <p><input name="answer" autocomplete="off" autofocus required maxlength="12" aria-label="characters">
            <button>Continue</button></p></form>
            <p id="state"></p>
            <script>
            const reload = \(reload), form = document.getElementById("form"), state = document.getElementById("state");
            form.addEventListener("submit", event => {
              event.preventDefault();
              const query = new URLSearchParams(new FormData(form)).toString();
              fetch("\(verifyPath)?" + query, {credentials: "same-origin"}).then(answer => {
                if (answer.ok && reload) { location.reload(); return; }
                if (answer.ok) { state.textContent = "Thank you. Please send your request again."; return; }
                if (!reload) { state.textContent = "That was not it; please send your request again for a new picture."; return; }
                state.textContent = "That was not it; here is a new one.";
                setTimeout(() => location.reload(), 1200);
              });
            });
            </script>
            </body></html>
            """
    }
}
