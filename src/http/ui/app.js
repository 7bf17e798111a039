/*
 * The status page of a volume: reads the volume's /metrics (JSON) every
 * second and draws it with Chart.js, which the volume serves too. Every URL
 * is relative ("metrics", "ui/..."), so that the page works where the volume
 * is mounted under a prefix (the gateway's /vol-1/ui).
 *
 * Figures read from /metrics (JSON), by name:
 *   volume_id, sync_mode, uptime_secs, read_only, total_keys, total_segments,
 *   total_bytes, live_bytes, dead_bytes, avg_value_size_bytes, index_bytes,
 *   fsyncs, puts, deletes, compacting, compactions, last_compaction_ms,
 *   last_compaction_reclaimed_bytes, last_compaction_error, disk_free_bytes,
 *   disk_size_bytes, segments[] {id, live_bytes, dead_bytes, active},
 *   latency_us.<kind> {count, buckets [[low, high, count]]}: kinds named
 *     http_* and resp_* are requests (rates and latency); any other kind
 *     (batch_wait: how long a write waits for its round of group commit) is
 *     drawn in the latency chart only;
 *   writes_per_fsync {count, buckets} when the volume has it: the writes each
 *     fdatasync of group commit made durable (else writes per fsync come
 *     from the counters: (puts + deletes) / fsyncs per interval);
 *   role, primary, replicas[] {name or address, lag_bytes, lag_ms} when the
 *     volume replicates (the section shows only then).
 * With AUTH_TOKEN set, /metrics answers 401 until the page sends the token:
 * the page asks for it, keeps it in this tab's sessionStorage, and sends it
 * as "Authorization: Bearer".
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var HISTORY = 120; /* points per chart: two minutes */
  var WINDOW = 5; /* seconds the latency percentiles cover */
  var TOKEN_KEY = "kvstore.token:" + location.pathname;
  var COLORS = {
    http_get: "#2456c5", http_put: "#e07a10", http_delete: "#c62828", http_list: "#7b3fb5",
    resp_read: "#0f8f8f", resp_write: "#8a5a2b", batch_wait: "#5f6b7a"
  };
  var SPARE = ["#3c9d3c", "#b0417a", "#4d6d8a", "#9a8a1f"];

  var samples = []; /* {t: seconds, m: metrics}, oldest first, at most HISTORY + WINDOW */
  var labels = [];
  var charts = {};
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function setState(state) { document.body.setAttribute("data-state", state); }

  function text(id, value) { $(id).textContent = value; }

  function bytes(n) {
    if (n === undefined || n === null) return "–";
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
  }

  function number(n, digits) {
    if (n === undefined || n === null || !isFinite(n)) return "–";
    return n.toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
  }

  function duration(secs) {
    var d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600);
    var m = Math.floor(secs % 3600 / 60), s = Math.floor(secs % 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + s + "s";
    return s + "s";
  }

  function colorOf(kind) {
    if (!COLORS[kind]) COLORS[kind] = SPARE[Object.keys(COLORS).length % SPARE.length];
    return COLORS[kind];
  }

  function isRequestKind(kind) { return /^(http|resp)_/.test(kind); }

  /* ---- figures of an interval, from two readings */

  /* The percentile q of the values recorded between two readings of a
   * histogram ({buckets: [[low, high, count]]}), interpolated in its bucket as
   * the server does; null when nothing was recorded in between. */
  function intervalPercentile(newer, older, q) {
    if (!newer || !newer.buckets) return null;
    var before = {};
    if (older && older.buckets) {
      older.buckets.forEach(function (b) { before[b[0]] = b[2]; });
    }
    var delta = [];
    var total = 0;
    newer.buckets.forEach(function (b) {
      var n = b[2] - (before[b[0]] || 0);
      if (n > 0) { delta.push([b[0], b[1], n]); total += n; }
    });
    if (total === 0) return null;
    var rank = q * total, seen = 0;
    for (var i = 0; i < delta.length; i++) {
      if (seen + delta[i][2] >= rank) {
        var frac = Math.max(0, (rank - seen) / delta[i][2]);
        return delta[i][0] + (delta[i][1] - delta[i][0]) * frac;
      }
      seen += delta[i][2];
    }
    return delta[delta.length - 1][1];
  }

  function countOf(h) { return h && typeof h.count === "number" ? h.count : 0; }

  /* ---- charts */

  function lineChart(id, yTitle, extra) {
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      spanGaps: false,
      interaction: { mode: "index", intersect: false },
      elements: { point: { radius: 0 }, line: { borderWidth: 2, tension: 0.2 } },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      onResize: fitTicks,
      scales: {
        x: { ticks: { maxTicksLimit: tickLimit($(id).parentNode.clientWidth), maxRotation: 0 } },
        y: { beginAtZero: true, title: { display: true, text: yTitle } }
      }
    };
    if (extra) extra(options);
    return new Chart($(id), { type: "line", data: { labels: labels, datasets: [] }, options: options });
  }

  /* Time labels that fit the chart's width: fewer on a phone. */
  function tickLimit(width) { return width < 560 ? 3 : 6; }

  function fitTicks(chart, size) { chart.options.scales.x.ticks.maxTicksLimit = tickLimit(size.width); }

  function makeCharts() {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    charts.rate = lineChart("chart-rate", "requests/s");
    charts.latency = lineChart("chart-latency", "ms", function (o) {
      o.scales.y = {
        type: "logarithmic",
        title: { display: true, text: "ms (log)" },
        ticks: { callback: function (v) { return formatMs(v); }, maxTicksLimit: 8 }
      };
    });
    charts.fsync = lineChart("chart-fsync", "fsyncs/s", function (o) {
      o.scales.y2 = {
        position: "right", beginAtZero: true,
        title: { display: true, text: "writes per fsync" },
        grid: { drawOnChartArea: false }
      };
    });
    charts.fsync.data.datasets.push(
      { label: "fsyncs/s", data: [], borderColor: "#2456c5", backgroundColor: "#2456c5", yAxisID: "y" },
      { label: "writes per fsync", data: [], borderColor: "#e07a10", backgroundColor: "#e07a10", yAxisID: "y2" });
    charts.segments = new Chart($("chart-segments"), {
      type: "bar",
      data: {
        labels: [],
        datasets: [
          { label: "live", data: [], backgroundColor: "#1f8a4c", stack: "s" },
          { label: "dead", data: [], backgroundColor: "#c9ced6", stack: "s" }
        ]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + bytes(c.raw); } } }
        },
        scales: {
          x: { stacked: true, title: { display: true, text: "segment" }, ticks: { maxRotation: 0, autoSkip: true } },
          y: { stacked: true, beginAtZero: true, ticks: { callback: function (v) { return bytes(v); } } }
        }
      }
    });
    text("chart-lib", "Chart.js " + Chart.version);
  }

  function formatMs(v) {
    if (v >= 1) return number(v, 1) + " ms";
    if (v >= 0.01) return number(v, 2) + " ms";
    return number(v * 1000, 1) + " µs";
  }

  /* The dataset of chart labelled name, made (padded with gaps) when new. */
  function dataset(chart, name, make) {
    var found = chart.data.datasets.filter(function (d) { return d.label === name; })[0];
    if (!found) {
      found = make();
      found.label = name;
      found.data = labels.map(function () { return null; }).slice(0, Math.max(0, labels.length - 1));
      chart.data.datasets.push(found);
    }
    return found;
  }

  function push(ds, value) {
    ds.data.push(value);
    while (ds.data.length > HISTORY) ds.data.shift();
  }

  /* ---- one reading */

  function older(seconds) {
    var now = samples[samples.length - 1];
    for (var i = samples.length - 2; i >= 0; i--) {
      if (now.t - samples[i].t >= seconds - 0.25) return samples[i];
    }
    return samples.length > 1 ? samples[0] : null;
  }

  function update() {
    var now = samples[samples.length - 1];
    var prev = samples.length > 1 ? samples[samples.length - 2] : null;
    var win = older(WINDOW);
    var m = now.m;
    var dt = prev ? Math.max(0.001, now.t - prev.t) : 0;

    labels.push(new Date(now.wall).toLocaleTimeString("en-GB", { hour12: false }));
    while (labels.length > HISTORY) labels.shift();

    var lat = m.latency_us || {};
    var total = 0;
    var busy = [];
    Object.keys(lat).forEach(function (kind) {
      var color = colorOf(kind);
      if (isRequestKind(kind)) {
        var rate = prev ? (countOf(lat[kind]) - countOf((prev.m.latency_us || {})[kind])) / dt : null;
        if (rate !== null && rate < 0) rate = null; /* the server restarted */
        if (rate) { total += rate; busy.push(kind.replace("_", " ") + " " + number(rate)); }
        if (countOf(lat[kind]) > 0 || rate) {
          push(dataset(charts.rate, kind, function () {
            return { borderColor: color, backgroundColor: color };
          }), rate);
        }
      }
      var oldLat = win ? (win.m.latency_us || {})[kind] : null;
      var p50 = win ? intervalPercentile(lat[kind], oldLat, 0.5) : null;
      var p99 = win ? intervalPercentile(lat[kind], oldLat, 0.99) : null;
      if (countOf(lat[kind]) > 0) {
        push(dataset(charts.latency, kind + " p50", function () {
          return { borderColor: color, backgroundColor: color };
        }), p50 === null ? null : p50 / 1000);
        push(dataset(charts.latency, kind + " p99", function () {
          return { borderColor: color, backgroundColor: color, borderDash: [6, 4], borderWidth: 1.5 };
        }), p99 === null ? null : p99 / 1000);
      }
    });
    /* Kinds that stopped appearing keep their place, with a gap. */
    [charts.rate, charts.latency].forEach(function (c) {
      c.data.datasets.forEach(function (d) { while (d.data.length < labels.length) d.data.push(null); while (d.data.length > labels.length) d.data.shift(); });
    });

    var fsyncRate = null, wpf = null, wpfSource = "";
    if (prev) {
      var dFsync = m.fsyncs - prev.m.fsyncs;
      var dWrites = (m.puts + m.deletes) - (prev.m.puts + prev.m.deletes);
      fsyncRate = dFsync >= 0 ? dFsync / dt : null;
      if (m.writes_per_fsync && win) {
        wpf = intervalPercentile(m.writes_per_fsync, win.m.writes_per_fsync, 0.5);
        wpfSource = "median over " + WINDOW + " s";
      } else if (dFsync > 0 && dWrites >= 0) {
        wpf = dWrites / dFsync;
        wpfSource = "writes ÷ fsyncs, last second";
      }
    }
    push(charts.fsync.data.datasets[0], fsyncRate);
    push(charts.fsync.data.datasets[1], wpf);

    var segs = m.segments || [];
    charts.segments.data.labels = segs.map(function (s) { return String(s.id) + (s.active ? "*" : ""); });
    charts.segments.data.datasets[0].data = segs.map(function (s) { return s.live_bytes; });
    charts.segments.data.datasets[1].data = segs.map(function (s) { return s.dead_bytes; });

    Object.keys(charts).forEach(function (k) { charts[k].update("none"); });

    updateTiles(m, prev ? total : null, busy, fsyncRate, wpf, wpfSource);
    updateReplication(m);
  }

  function updateTiles(m, rps, busy, fsyncRate, wpf, wpfSource) {
    text("volume", m.volume_id || "volume");
    var status = $("status");
    status.textContent = m.read_only ? "read-only" : "healthy";
    status.className = "badge " + (m.read_only ? "bad" : "ok");
    text("sync", "SYNC_MODE=" + (m.sync_mode || "?"));
    text("uptime", "up " + duration(m.uptime_secs || 0));
    text("updated", "updated " + new Date().toLocaleTimeString("en-GB", { hour12: false }));

    text("keys", number(m.total_keys));
    text("avg-size", m.total_keys ? "about " + bytes(m.avg_value_size_bytes) + " a key" : "");
    text("rps", rps === null ? "–" : number(rps, rps < 10 ? 1 : 0));
    text("rps-kinds", busy.join(", "));
    text("fsyncs", fsyncRate === null ? "–" : number(fsyncRate, 1));
    text("sync-mode", number(m.fsyncs) + " in all");
    text("wpf", wpf === null ? "–" : number(wpf, 1));
    text("wpf-source", wpfSource);
    text("disk", bytes(m.total_bytes));
    text("disk-split", "live " + bytes(m.live_bytes) + " · dead " + bytes(m.dead_bytes));
    if (m.disk_size_bytes) {
      var pct = 100 * m.disk_free_bytes / m.disk_size_bytes;
      text("free", bytes(m.disk_free_bytes));
      text("free-of", number(pct, 1) + " % of " + bytes(m.disk_size_bytes));
      $("free").className = pct < 10 ? "low" : "";
    } else {
      text("free", "unknown");
      text("free-of", "");
    }
    var c = $("compaction");
    c.textContent = m.compacting ? "running" : "idle";
    var last;
    if (m.last_compaction_error) last = "last one failed: " + m.last_compaction_error;
    else if (m.compactions > 0) last = "last freed " + bytes(m.last_compaction_reclaimed_bytes) +
      " in " + number(m.last_compaction_ms) + " ms (" + number(m.compactions) + " in all)";
    else last = "none since start";
    text("compaction-last", last);
    text("index", bytes(m.index_bytes));
    text("segments-count", number(m.total_segments) + " segment" + (m.total_segments === 1 ? "" : "s"));
  }

  function updateReplication(m) {
    var section = $("replication");
    if (!("role" in m)) { section.hidden = true; return; }
    section.hidden = false;
    text("role", String(m.role));
    $("primary-line").hidden = !m.primary;
    text("primary", m.primary ? String(m.primary) : "");
    var replicas = Array.isArray(m.replicas) ? m.replicas : [];
    var table = $("replicas");
    table.hidden = replicas.length === 0;
    var body = table.tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    replicas.forEach(function (r) {
      var row = body.insertRow();
      [r.name || r.address || r.addr || "?", number(r.lag_bytes), number(r.lag_ms)].forEach(function (v) {
        row.insertCell().textContent = String(v);
      });
    });
  }

  /* ---- polling and the token */

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function askForToken(refused) {
    setState("login");
    $("login").hidden = false;
    $("dash").hidden = true;
    $("forget").hidden = true;
    text("status", "token needed");
    $("status").className = "badge warn";
    text("updated", "");
    text("login-error", refused ? "The volume refused that token." : "");
    $("token").focus();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  function poll() {
    var headers = { Accept: "application/json" };
    var t = token();
    if (t) headers.Authorization = "Bearer " + t;
    fetch("metrics", { headers: headers, cache: "no-store", credentials: "omit" })
      .then(function (res) {
        if (res.status === 401) {
          askForToken(Boolean(t));
          return null;
        }
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (m) {
        if (!m) return;
        samples.push({ t: performance.now() / 1000, wall: Date.now(), m: m });
        while (samples.length > HISTORY + WINDOW + 1) samples.shift();
        $("login").hidden = true;
        $("dash").hidden = false;
        $("forget").hidden = !t;
        update();
        setState("live");
        schedule();
      })
      .catch(function (err) {
        setState("error");
        text("status", "unreachable");
        $("status").className = "badge bad";
        text("updated", String(err.message || err) + "; retrying");
        schedule();
      });
  }

  function start() {
    makeCharts();
    $("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var value = $("token").value;
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      text("login-error", "");
      poll();
    });
    $("forget").addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      samples = [];
      poll();
    });
    poll();
  }

  if (typeof Chart === "undefined") {
    setState("error");
    text("updated", "the chart library did not load");
    return;
  }
  start();
})();
