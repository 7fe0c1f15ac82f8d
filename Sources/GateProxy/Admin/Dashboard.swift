/// The admin listener's `/`: one page of plain HTML, CSS and a little JavaScript (no build
/// step) that reads the admin endpoints every 2 s — `/readyz`, `/metrics`, `/blocked`, `/rules` —
/// and shows readiness and the warm-up phase, the rate of each decision, the clients banned and
/// challenged (with rule, reason and time left, and an unblock button), and the rules version
/// with the last reload error. With an admin token, the page asks for it once (kept in the
/// tab's session storage) and sends it as `Authorization: Bearer`.
enum Dashboard {
    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>SpikeGate</title>
        <style>
          body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f6f7f9; }
          h1 { font-size: 1.3rem; margin: 0 0 1rem; }
          h2 { font-size: 1rem; margin: 1.4rem 0 .5rem; }
          .cards { display: flex; gap: .8rem; flex-wrap: wrap; }
          .card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .6rem .9rem; min-width: 9rem; }
          .card b { display: block; font-size: 1.25rem; }
          .ok { color: #137333; } .bad { color: #b3261e; }
          table { border-collapse: collapse; width: 100%; background: #fff; }
          th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e6e9ef; }
          th { background: #eef1f5; font-weight: 600; }
          button { font: inherit; padding: .1rem .6rem; cursor: pointer; }
          #token-form { display: none; margin: .5rem 0; }
          #error { color: #b3261e; white-space: pre-wrap; }
        </style>
        </head>
        <body>
        <h1>SpikeGate</h1>
        <div class="cards">
          <div class="card">Readiness<b id="ready">…</b><span id="ready-reason"></span></div>
          <div class="card">Warm-up<b id="warmup">…</b></div>
          <div class="card">Rules<b id="rules-version">…</b><span id="rules-error"></span></div>
          <div class="card">Banned<b id="banned-count">…</b></div>
          <div class="card">Challenged<b id="challenged-count">…</b></div>
        </div>
        <form id="token-form"><label>Admin token <input id="token" type="password" size="32"></label> <button>Use</button></form>
        <h2>Requests per second by decision</h2>
        <table><thead><tr><th>decision</th><th>per second</th><th>total</th></tr></thead><tbody id="rates"></tbody></table>
        <h2>Blocked clients</h2>
        <table><thead><tr><th>action</th><th>kind</th><th>key</th><th>rule</th><th>reason</th><th>time left</th><th>hits</th><th></th></tr></thead>
        <tbody id="blocked"></tbody></table>
        <p id="error"></p>
        <script>
        "use strict";
        const previous = {};
        let previousAt = 0;
        function headers() {
          const token = sessionStorage.getItem("spikegate-token");
          return token ? { "Authorization": "Bearer " + token } : {};
        }
        function text(id, value, cls) {
          const element = document.getElementById(id);
          element.textContent = value;
          if (cls !== undefined) element.className = cls;
        }
        function cell(row, value) {
          const td = document.createElement("td");
          td.textContent = value;
          row.appendChild(td);
          return td;
        }
        async function readiness() {
          const answer = await fetch("/readyz");
          const page = await answer.json();
          text("ready", page.ready ? "ready" : "not ready", page.ready ? "ok" : "bad");
          text("ready-reason", page.reason);
          if (page.warmup) text("warmup", page.warmup.phase + " " + Math.round(page.warmup.admitted_share * 100) + "%");
        }
        async function rates() {
          const body = await (await fetch("/metrics")).text();
          const now = Date.now();
          // Summed over the routes.
          const totals = {};
          for (const match of body.matchAll(/^spikegate_requests_total\\{route="(?:[^"\\\\]|\\\\.)*",decision="([a-z_]+)"\\} ([0-9.e+]+)$/gm)) {
            totals[match[1]] = (totals[match[1]] || 0) + Number(match[2]);
          }
          const rows = [];
          for (const [decision, total] of Object.entries(totals)) {
            const rate = previousAt && previous[decision] !== undefined ? (total - previous[decision]) * 1000 / (now - previousAt) : 0;
            previous[decision] = total;
            rows.push([decision, rate, total]);
          }
          previousAt = now;
          const table = document.getElementById("rates");
          table.replaceChildren();
          rows.sort((a, b) => b[1] - a[1] || b[2] - a[2]);
          for (const [decision, rate, total] of rows) {
            const row = document.createElement("tr");
            cell(row, decision);
            cell(row, rate.toFixed(1));
            cell(row, total);
            table.appendChild(row);
          }
        }
        async function blocked() {
          const answer = await fetch("/blocked?limit=50", { headers: headers() });
          if (answer.status === 401) {
            document.getElementById("token-form").style.display = "block";
            return;
          }
          const page = await answer.json();
          text("banned-count", page.banned);
          text("challenged-count", page.challenged);
          const table = document.getElementById("blocked");
          table.replaceChildren();
          for (const entry of page.blocked) {
            const row = document.createElement("tr");
            row.dataset.kind = entry.kind;
            row.dataset.key = entry.key;
            cell(row, entry.action);
            cell(row, entry.kind);
            cell(row, entry.key);
            cell(row, entry.rule);
            cell(row, entry.reason);
            cell(row, Math.max(0, Math.round(entry.seconds_left)) + " s");
            cell(row, entry.hits);
            const button = document.createElement("button");
            button.textContent = "unblock";
            button.onclick = async () => {
              await fetch("/blocked/" + entry.kind + "/" + encodeURIComponent(entry.key), { method: "DELETE", headers: headers() });
              refresh();
            };
            cell(row, "").appendChild(button);
            table.appendChild(row);
          }
        }
        async function rules() {
          const page = await (await fetch("/rules")).json();
          text("rules-version", page.version);
          text("rules-error", page.last_error ? "last reload failed: " + page.last_error : "", page.last_error ? "bad" : "");
        }
        async function refresh() {
          const failures = [];
          for (const part of [readiness, rates, blocked, rules]) {
            try { await part(); } catch (error) { failures.push(part.name + ": " + error); }
          }
          text("error", failures.join("\\n"));
        }
        document.getElementById("token-form").onsubmit = (event) => {
          event.preventDefault();
          sessionStorage.setItem("spikegate-token", document.getElementById("token").value);
          document.getElementById("token-form").style.display = "none";
          refresh();
        };
        refresh();
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>

        """
}
