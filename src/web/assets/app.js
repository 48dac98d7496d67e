// HelixRouter dashboard. Vanilla JS, no dependencies, no external requests.
//
// Data sources (all same-origin):
//   GET /api/stats              polled every STATS_MS
//   GET /api/neural             polled every NEURAL_MS
//   GET /api/config             polled every CONFIG_MS
//   GET /api/stream/decisions   SSE; reconnected with exponential back-off
//
// Every poll is a chain (fetch -> render -> setTimeout), never an interval, so two
// requests of the same kind are never in flight at once and a render always shows
// data fetched after the previous render.
(function () {
  "use strict";

  var STATS_MS = 1000;
  var NEURAL_MS = 3000;
  var CONFIG_MS = 10000;
  var FEED_MAX = 100;          // rows kept in #feed
  var FEED_FLUSH_MS = 120;     // how often buffered decisions are written to the DOM
  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var WORKERS_MAX = 32;        // rows kept in #remote-workers; the rest are counted

  // Strategy::ALL order, as /api/stats `strategies[]` and /api/neural list them.
  var STRATEGIES = ["inline", "spawn", "cpu_pool", "batch", "drop", "remote"];
  var STRATEGY_LABEL = {
    inline: "inline", spawn: "spawn", cpu_pool: "CPU pool", batch: "batch", drop: "drop", remote: "remote"
  };
  var KIND_LABEL = {
    hash_mix: "hash mix", prime_count: "prime count", monte_carlo_risk: "Monte Carlo risk", custom: "custom"
  };

  // ---------------------------------------------------------------- helpers

  function $(id) { return document.getElementById(id); }

  /** Creates an element: h("td", {class: "num"}, "text" | Node | [children]). */
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] == null) continue;
        if (k === "class") el.className = attrs[k];
        else if (k === "text") el.textContent = attrs[k];
        else el.setAttribute(k, attrs[k]);
      }
    }
    appendAll(el, children);
    return el;
  }
  function appendAll(el, children) {
    if (children == null) return;
    if (!Array.isArray(children)) children = [children];
    for (var i = 0; i < children.length; i++) {
      var c = children[i];
      if (c == null) continue;
      el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
  }
  function setText(id, text) {
    var el = typeof id === "string" ? $(id) : id;
    if (el && el.textContent !== text) el.textContent = text;
  }
  function replaceChildren(el, nodes) {
    while (el.firstChild) el.removeChild(el.firstChild);
    appendAll(el, nodes);
  }
  function isNum(x) { return typeof x === "number" && isFinite(x); }

  var intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  function fmtInt(n) { return isNum(n) ? intFmt.format(Math.round(n)) : "—"; }

  /** Fixed decimals, trimmed to three significant digits for readability. */
  function sig3(x) {
    var a = Math.abs(x);
    if (a >= 100) return x.toFixed(0);
    if (a >= 10) return x.toFixed(1);
    return x.toFixed(2);
  }

  /** A duration given in microseconds: ns / µs / ms / s, three significant digits. */
  function fmtUs(us) {
    if (!isNum(us)) return "—";
    if (us < 1) return sig3(us * 1000) + " ns";
    if (us < 1000) return sig3(us) + " µs";
    if (us < 1e6) return sig3(us / 1000) + " ms";
    return sig3(us / 1e6) + " s";
  }
  function fmtNs(ns) { return isNum(ns) ? fmtUs(ns / 1000) : "—"; }

  /** A fraction in [0, 1] as a percentage. */
  function fmtPct(x, digits) {
    if (!isNum(x)) return "—";
    return (x * 100).toFixed(digits == null ? 1 : digits) + " %";
  }
  function fmtRate(perSec) {
    if (!isNum(perSec)) return "—";
    return (Math.abs(perSec) >= 100 ? perSec.toFixed(0) : perSec.toFixed(1));
  }
  function fmtUptime(secs) {
    if (!isNum(secs)) return "—";
    secs = Math.floor(secs);
    var d = Math.floor(secs / 86400), hh = Math.floor(secs / 3600) % 24,
        m = Math.floor(secs / 60) % 60, s = secs % 60;
    if (d) return d + " d " + hh + " h " + m + " min";
    if (hh) return hh + " h " + m + " min " + s + " s";
    if (m) return m + " min " + s + " s";
    return s + " s";
  }
  function fmtClock(ms) {
    if (!isNum(ms)) return "—";
    var d = new Date(ms);
    function p(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }
    return p(d.getHours(), 2) + ":" + p(d.getMinutes(), 2) + ":" + p(d.getSeconds(), 2) + "." + p(d.getMilliseconds(), 3);
  }
  function strategyLabel(s) { return STRATEGY_LABEL[s] || String(s); }
  function kindLabel(k) { return k == null ? "custom" : (KIND_LABEL[k] || String(k)); }
  function chip(s, strong) {
    return h("span", { class: strong ? "chip chip-strong" : "chip", "data-s": s }, strategyLabel(s));
  }
  /** A value with a muted unit: "12.3 ms" -> 12.3<span class=unit>ms</span>. */
  function withUnit(text) {
    var i = text.lastIndexOf(" ");
    if (i < 0 || text === "—") return document.createTextNode(text);
    var f = document.createDocumentFragment();
    f.appendChild(document.createTextNode(text.slice(0, i)));
    f.appendChild(h("span", { class: "unit" }, text.slice(i + 1)));
    return f;
  }

  /** GET a JSON document; rejects on a network error or a non-2xx status. */
  function getJSON(path) {
    return fetch(path, { cache: "no-store", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    });
  }

  /** Runs `task` (returning a promise) every `ms`, chained; `onError` gets failures. */
  function pollLoop(task, ms, onError) {
    var failures = 0;
    function tick() {
      var p;
      try { p = Promise.resolve(task()); } catch (e) { p = Promise.reject(e); }
      p.then(function () { failures = 0; setTimeout(tick, ms); },
             function (err) {
               failures++;
               if (onError) onError(err, failures);
               // Back off gently while the server is away: ms, 2ms, 4ms ... up to 10 s.
               setTimeout(tick, Math.min(10000, ms * Math.pow(2, Math.min(failures - 1, 4))));
             });
    }
    tick();
  }

  // ------------------------------------------------------------------ state

  var state = {
    config: null,
    lastStats: null,        // previous stats, for rates
    lastStatsAt: 0,         // Date.now() of the last successful stats render
    statsSeq: 0             // bumped on every stats render (tests read data-seq)
  };

  // ------------------------------------------------------------------ stats

  function renderStats(s) {
    var prev = state.lastStats;
    state.lastStats = s;
    state.lastStatsAt = Date.now();
    state.statsSeq++;

    // Totals, all from this one snapshot.
    setText("total-submitted", fmtInt(s.submitted));
    setText("total-completed", fmtInt(s.completed));
    setText("total-dropped", fmtInt(s.dropped));
    setText("total-failed", fmtInt(s.failed));
    setText("total-in-flight", fmtInt(s.in_flight));
    setText("total-late", fmtInt(s.late));
    setText("total-cancelled", fmtInt(s.cancelled));
    $("total-dropped").classList.toggle("zero", !s.dropped);
    $("total-failed").classList.toggle("zero", !s.failed);
    $("total-cancelled").classList.toggle("zero", !s.cancelled);

    var dt = prev ? s.uptime_secs - prev.uptime_secs : 0;
    if (prev && dt > 0.05 && s.submitted >= prev.submitted) {
      setText("rate-submitted", fmtRate((s.submitted - prev.submitted) / dt) + " jobs/s");
      setText("rate-completed", fmtRate((s.completed - prev.completed) / dt) + " jobs/s");
    }
    setText("pct-dropped", (s.submitted ? fmtPct(s.dropped / s.submitted) : "—") + " of submitted");
    setText("pct-failed", (s.submitted ? fmtPct(s.failed / s.submitted, 2) : "—") + " of submitted");
    setText("pct-late", (s.completed ? fmtPct(s.late / s.completed) : "—") + " of completed");
    setText("pct-cancelled", (s.submitted ? fmtPct(s.cancelled / s.submitted, 2) : "—") + " of submitted");
    var w = s.work || {};
    var workTotal = (w.on_time_secs || 0) + (w.late_secs || 0) + (w.aborted_secs || 0);
    setText("work-wasted", workTotal > 0 ? fmtPct(((w.late_secs || 0) + (w.aborted_secs || 0)) / workTotal) : "—");
    setText("work-detail", (w.late_secs || 0).toFixed(1) + " s late · " + (w.aborted_secs || 0).toFixed(1) + " s aborted of " + workTotal.toFixed(1) + " s");
    setText("uptime", fmtUptime(s.uptime_secs));
    $("shutting-down").hidden = !s.shutting_down;

    var strategies = Array.isArray(s.strategies) ? s.strategies : [];
    renderDonut(strategies);
    renderLatency(strategies);
    renderPressure(s.pressure || {});
    renderPool(s);
    renderAutoscaler(s.autoscaler, s);
    renderClasses(Array.isArray(s.classes) ? s.classes : [], s.class_overflow);
    renderRemote(s.remote, strategies);

    var totals = $("totals");
    totals.setAttribute("data-seq", String(state.statsSeq));
    setStatsState("live", "ok");
  }

  /**
   * Where the jobs went: each strategy's routed jobs less those shed after routing
   * (evicted or expired in a queue), and "drop" every shed job, so the mix never shows
   * "drop 0" beside a non-zero dropped total.
   */
  function outcomeCounts(strategies) {
    var shedAfter = 0;
    strategies.forEach(function (x) { if (x.strategy !== "drop") shedAfter += x.dropped || 0; });
    return strategies.map(function (x) {
      var n = x.strategy === "drop" ? (x.routed || 0) + shedAfter : Math.max(0, (x.routed || 0) - (x.dropped || 0));
      return { strategy: x.strategy, n: n };
    });
  }

  function renderDonut(strategies) {
    var total = 0;
    strategies = outcomeCounts(strategies);
    strategies.forEach(function (x) { total += x.n; });
    var segs = $("donut-segments");
    var legend = $("donut-legend");
    var segNodes = [], legendNodes = [];
    var offset = 0;
    strategies.forEach(function (x) {
      var share = total ? x.n / total : 0;
      var pct = share * 100;
      if (pct > 0) {
        var c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
        c.setAttribute("class", "donut-seg");
        c.setAttribute("data-s", x.strategy);
        c.setAttribute("cx", "21"); c.setAttribute("cy", "21"); c.setAttribute("r", "15.9155");
        c.setAttribute("stroke-dasharray", pct.toFixed(3) + " " + (100 - pct).toFixed(3));
        // Start at 12 o'clock (offset 25) and go clockwise.
        c.setAttribute("stroke-dashoffset", (25 - offset).toFixed(3));
        var t = document.createElementNS("http://www.w3.org/2000/svg", "title");
        t.textContent = strategyLabel(x.strategy) + ": " + fmtInt(x.n) + " jobs (" + fmtPct(share) + ")";
        c.appendChild(t);
        segNodes.push(c);
        offset += pct;
      }
      legendNodes.push(h("li", { "data-s": x.strategy }, [
        h("span", { class: "sw", "aria-hidden": "true" }),
        h("span", null, strategyLabel(x.strategy)),
        h("span", { class: "n", title: x.strategy === "drop" ? "jobs shed, at routing or later in a queue" : "jobs routed here and not shed" }, fmtInt(x.n) + " jobs"),
        h("span", { class: "p" }, total ? fmtPct(share) : "—")
      ]));
    });
    replaceChildren(segs, segNodes);
    replaceChildren(legend, legendNodes);
    setText("donut-total", total >= 1e6 ? (total / 1e6).toFixed(2) + "M" : fmtInt(total));
  }

  function renderLatency(strategies) {
    var body = $("latency-body");
    var rows = strategies.map(function (x) {
      var l = x.latency || {};
      var has = (l.count || 0) > 0 && (l.window || 0) > 0;
      function cell(v, cls) {
        return h("td", { class: "num" + (cls ? " " + cls : "") + (has ? "" : " na") }, has ? withUnit(fmtUs(v)) : "—");
      }
      return h("tr", { "data-s": x.strategy, "data-strategy": x.strategy }, [
        h("td", null, chip(x.strategy)),
        h("td", { class: "num col-routed" }, fmtInt(x.routed)),
        h("td", { class: "num col-shed", title: "shed after being routed here (evicted or expired in a queue; for drop, shed at routing)" }, fmtInt(x.dropped)),
        h("td", { class: "num", title: "window: " + fmtInt(l.window) + " samples" }, fmtInt(l.count)),
        cell(l.p50_us), cell(l.p95_us), cell(l.p99_us), cell(l.ema_us),
        cell(l.min_us, "col-min"), cell(l.max_us, "col-max")
      ]);
    });
    replaceChildren(body, rows);
  }

  /** hint / learned: three significant digits, more decimals below 0.1 (0.0020). */
  function fmtRatio(r) {
    if (!isNum(r)) return "—";
    if (r > 0 && r < 0.1) return r.toPrecision(2);
    return sig3(r);
  }
  /** How far off a hint is, in words: "hint is 511× below the learned cost". */
  function hintOffText(r) {
    if (!isNum(r) || r <= 0) return "hint is far from the learned cost";
    return r < 1 ? "hint is " + sig3(1 / r) + "× below the learned cost"
                 : "hint is " + sig3(r) + "× above the learned cost";
  }

  /** The class model's fit in a few characters: "×1.02 ±1.05", "30 µs + 12 ns/u ±1.10". */
  function fitText(c) {
    var spread = isNum(c.residual_spread) ? " ±" + sig3(c.residual_spread) : "";
    if (c.model === "ratio" && isNum(c.ratio)) return "×" + fmtRatio(c.ratio) + spread;
    if (c.model === "units" && isNum(c.ns_per_unit)) {
      return fmtNs(c.fixed_ns || 0) + " + " + sig3(c.ns_per_unit) + " ns/u" + spread;
    }
    return spread ? spread.slice(1) : "—";
  }
  function fitTitle(c) {
    if (c.model === "ratio") return "each job is routed on its own hint × " + fmtRatio(c.ratio) + " (measured ÷ hinted, from " + fmtInt(c.ratio_samples) + " runs)";
    if (c.model === "units") return "each job is routed on " + fmtNs(c.fixed_ns || 0) + " + " + sig3(c.ns_per_unit) + " ns per unit of its size (from " + fmtInt(c.units_samples) + " runs)";
    return "jobs give neither a cost nor a size: routed on the class's typical cost";
  }

  // Class names come from callers: they are only ever inserted as text (h() makes
  // text nodes of strings) or as attribute values, never parsed as markup.
  function renderClasses(classes, overflow) {
    var rows = classes.map(function (c) {
      var name = String(c.name);
      var badge = c.mismatch ? h("span", { class: "badge badge-hint", title: hintOffText(c.hint_ratio) }, [
        "hint off", h("span", { class: "visually-hidden" }, ": " + hintOffText(c.hint_ratio))
      ]) : null;
      function dur(v, fmt, missing) {
        return isNum(v) ? h("td", { class: "num" }, withUnit(fmt(v))) : h("td", { class: "num na", title: missing }, "—");
      }
      function wastedCell(w) {
        w = w || {};
        var total = (w.on_time_secs || 0) + (w.late_secs || 0) + (w.aborted_secs || 0);
        if (!(total > 0)) return h("td", { class: "num col-wasted na" }, "—");
        var title = (w.late_secs || 0).toFixed(2) + " s late · " + (w.aborted_secs || 0).toFixed(2) + " s aborted of " + total.toFixed(2) + " s";
        return h("td", { class: "num col-wasted", title: title }, fmtPct(((w.late_secs || 0) + (w.aborted_secs || 0)) / total));
      }
      function count(v, cls) {
        return h("td", { class: "num" + (cls ? " " + cls : "") + (v ? "" : " na") }, fmtInt(v));
      }
      var learned = dur(c.learned_cost_ns, fmtNs, "not measured yet");
      if (isNum(c.cost_p90_ns)) learned.setAttribute("title", "p90 " + fmtNs(c.cost_p90_ns) + (isNum(c.spread) ? " · spread ×" + sig3(c.spread) : ""));
      var p50 = dur(c.p50_us, fmtUs, "no completions yet");
      p50.className += " col-p50";
      var model = String(c.model || "class");
      return h("tr", { class: c.mismatch ? "class-row mismatch" : "class-row", "data-class": name, "data-mismatch": String(!!c.mismatch) }, [
        h("th", { scope: "row", class: "col-name", title: name }, [h("span", { class: "class-name" }, name), badge]),
        h("td", { class: "num col-samples" }, fmtInt(c.samples)),
        h("td", { class: "col-model" }, h("span", { class: "model-chip", "data-model": model }, model)),
        h("td", { class: "num col-fit", title: fitTitle(c) }, fitText(c)),
        learned,
        isNum(c.hint_ns) ? h("td", { class: "num col-hint" }, withUnit(fmtNs(c.hint_ns)))
                         : h("td", { class: "num col-hint na" }, "none"),
        h("td", { class: "num col-ratio" }, isNum(c.hint_ratio) ? withUnit(fmtRatio(c.hint_ratio) + " ×") : h("span", { class: "muted" }, "—")),
        h("td", { class: "num col-completed" }, fmtInt(c.completed)),
        count(c.dropped, "col-dropped"),
        count(c.late, "col-late"),
        count(c.cancelled, "col-cancelled"),
        wastedCell(c.work),
        p50,
        dur(c.p99_us, fmtUs, "no completions yet")
      ]);
    });
    replaceChildren($("classes-body"), rows);
    $("classes-empty").hidden = rows.length > 0;
    var note = $("class-overflow");
    note.hidden = !(overflow > 0);
    if (overflow > 0) {
      var cfg = state.config || {};
      replaceChildren(note, [
        h("b", null, fmtInt(overflow)), overflow === 1 ? " lookup" : " lookups", " beyond ",
        h("code", null, "max_classes"), isNum(cfg.max_classes) ? " (" + fmtInt(cfg.max_classes) + ")" : "",
        " share ", h("code", null, "_overflow")
      ]);
    }
  }

  // ----------------------------------------------------------------- remote

  /** Microseconds shown in milliseconds, three significant digits. */
  function fmtMs(us) { return isNum(us) ? sig3(us / 1000) + " ms" : "—"; }
  /** Milliseconds since something happened: "850 ms ago", "2.40 s ago". */
  function fmtAgo(ms) {
    if (!isNum(ms)) return "—";
    return ms < 1000 ? fmtInt(ms) + " ms ago" : sig3(ms / 1000) + " s ago";
  }
  // A worker not heard from for this long has missed a few 1 s heartbeats.
  var WORKER_STALE_MS = 3000;
  var REMOTE_COUNTERS = [
    // [field, element id, shown in the warning colour when non-zero]
    ["sent", "rm-sent", false], ["completed", "rm-completed", false], ["failed", "rm-failed", true],
    ["redelivered", "rm-redelivered", false], ["duplicates", "rm-duplicates", false],
    ["expired", "rm-expired", true], ["timed_out", "rm-timed-out", true],
    ["publish_failed", "rm-publish-failed", true], ["malformed", "rm-malformed", true]
  ];

  // Worker ids, task names and the subject come from other processes: they are only
  // ever inserted as text or attribute values, never parsed as markup.
  function renderRemote(r, strategies) {
    var panel = $("remote");
    var pill = $("remote-pill");
    var on = r != null && typeof r === "object";
    panel.setAttribute("data-state", on ? (r.connected ? "connected" : "disconnected") : "off");
    $("remote-off").hidden = on;
    $("remote-body").hidden = !on;
    if (!on) {
      pill.setAttribute("data-state", "off");
      setText("remote-conn", "off");
      return;
    }
    pill.setAttribute("data-state", r.connected ? "live" : "down");
    setText("remote-conn", r.connected ? "connected" : "disconnected");

    var total = 0, remote = 0;
    strategies.forEach(function (x) {
      total += x.routed || 0;
      if (x.strategy === "remote") remote = x.routed || 0;
    });
    replaceChildren($("rm-share"), [
      total ? fmtPct(remote / total) : "—", " ",
      h("small", null, fmtInt(remote) + " of " + fmtInt(total) + " jobs")
    ]);
    replaceChildren($("rm-in-flight"), [fmtInt(r.in_flight) + " ", h("small", null, "jobs")]);
    setText("rm-rt-p50", fmtMs(r.round_trip_p50_us));
    setText("rm-rt-p99", fmtMs(r.round_trip_p99_us));
    REMOTE_COUNTERS.forEach(function (c) {
      var el = $(c[1]);
      setText(el, fmtInt(r[c[0]]));
      el.classList.toggle("attn", c[2] && isNum(r[c[0]]) && r[c[0]] > 0);
    });
    var tasks = Array.isArray(r.tasks) ? r.tasks.map(String) : [];
    setText("rm-tasks", tasks.length ? tasks.join(", ") : "none");
    setText("rm-subject", r.results_subject == null ? "—" : String(r.results_subject));

    var workers = Array.isArray(r.workers) ? r.workers : [];
    var rows = workers.slice(0, WORKERS_MAX).map(function (w) {
      var id = String(w.id);
      var wt = Array.isArray(w.tasks) ? w.tasks.map(String) : [];
      var frac = isNum(w.running) && isNum(w.parallelism) && w.parallelism > 0 ? Math.min(1, w.running / w.parallelism) : 0;
      var stale = isNum(w.last_seen_ms) && w.last_seen_ms > WORKER_STALE_MS;
      return h("tr", { class: stale ? "worker-row stale" : "worker-row", "data-worker-id": id }, [
        h("th", { scope: "row", class: "col-worker", title: id }, h("span", { class: "worker-id" }, id)),
        h("td", { class: "num col-running" }, [
          fmtInt(w.running) + " / " + fmtInt(w.parallelism),
          h("span", { class: "meter", "aria-hidden": "true" }, h("span", { style: "width:" + (frac * 100).toFixed(1) + "%" }))
        ]),
        h("td", { class: "num" }, fmtInt(w.queued)),
        h("td", { class: "num col-wtasks", title: wt.join(", ") }, fmtInt(wt.length)),
        h("td", { class: "num col-seen", title: stale ? "no heartbeat for a while" : null }, fmtAgo(w.last_seen_ms))
      ]);
    });
    replaceChildren($("remote-workers"), rows);
    setText("rm-workers", fmtInt(workers.length));
    $("remote-workers-empty").hidden = workers.length > 0;
    var more = $("remote-more");
    var extra = workers.length - rows.length;
    more.hidden = extra <= 0;
    setText(more, extra > 0 ? "+" + fmtInt(extra) + " more " + (extra === 1 ? "worker" : "workers") : "");
  }

  function level(x) { return x >= 0.8 ? "bad" : x >= 0.5 ? "warn" : "ok"; }

  function renderPressure(p) {
    var score = isNum(p.score) ? Math.max(0, Math.min(1, p.score)) : 0;
    var fill = $("gauge-fill");
    fill.setAttribute("stroke-dasharray", (score * 100).toFixed(2) + " 100");
    fill.setAttribute("data-level", level(score));
    var sc = $("pressure-score");
    setText(sc, fmtPct(p.score));
    sc.setAttribute("data-level", level(score));
    sc.setAttribute("data-value", isNum(p.score) ? String(p.score) : "");
    setText("pressure-internal", fmtPct(p.internal));
    ["saturation", "queue_fill", "drop_rate", "late_rate", "external"].forEach(function (k) {
      var v = p[k];
      var bar = $("pc-" + k);
      var has = isNum(v);
      bar.style.width = has ? (Math.max(0, Math.min(1, v)) * 100).toFixed(1) + "%" : "0";
      bar.style.background = has ? "var(--" + (level(v) === "ok" ? "accent" : level(v)) + ")" : "";
      setText("pv-" + k, has ? fmtPct(v) : (k === "external" ? "none" : "—"));
    });
  }

  function renderPool(s) {
    var cfg = state.config || {};
    var adaptive = s.adaptive_spawn_threshold;
    var dd = $("adaptive-threshold");
    replaceChildren(dd, [fmtNs(adaptive) + " est. cost"]);
    if (isNum(cfg.spawn_threshold) && isNum(adaptive) && cfg.spawn_threshold > 0 && adaptive !== cfg.spawn_threshold) {
      dd.appendChild(h("small", null, " ×" + (adaptive / cfg.spawn_threshold).toFixed(2) + " configured"));
    }
    setText("configured-spawn-threshold", isNum(cfg.spawn_threshold) ? fmtNs(cfg.spawn_threshold) + " est. cost" : "—");
    setText("inline-threshold", isNum(cfg.inline_threshold) ? fmtNs(cfg.inline_threshold) + " est. cost" : "—");
    meterText("cpu-running", s.cpu_running, s.cpu_parallelism, "workers");
    meterText("cpu-queue", s.cpu_queue_depth, s.cpu_queue_cap, "jobs");
    replaceChildren($("cpu-slowdown"), isNum(s.cpu_slowdown)
      ? ["×" + s.cpu_slowdown.toFixed(2) + " ", h("small", null, "of estimate")] : "—");
    setText("cpu-shed", fmtInt(s.cpu_shed_in_queue) + " jobs");
    setText("batch-depth", fmtInt(s.batch_queue_depth) + " jobs waiting");
    var hasFlushes = isNum(s.batch_flushes_full) && isNum(s.batch_flushes_timer);
    $("batch-flushes-item").hidden = !hasFlushes;
    if (hasFlushes) setText("batch-flushes", fmtInt(s.batch_flushes_full) + " full · " + fmtInt(s.batch_flushes_timer) + " timed");
    var skipped = $("nn-skipped");
    skipped.hidden = !isNum(s.learning_samples_skipped);
    if (isNum(s.learning_samples_skipped)) setText(skipped, fmtInt(s.learning_samples_skipped) + " skipped (learner busy)");
  }
  function meterText(id, value, cap, unit) {
    var dd = $(id);
    var frac = isNum(value) && isNum(cap) && cap > 0 ? Math.min(1, value / cap) : 0;
    replaceChildren(dd, [
      fmtInt(value) + " / " + fmtInt(cap) + " ",
      h("small", null, unit),
      h("span", { class: "meter", "aria-hidden": "true" }, h("span", { style: "width:" + (frac * 100).toFixed(1) + "%" }))
    ]);
  }

  function renderAutoscaler(a, s) {
    var cfg = state.config || {};
    setText("as-now", fmtInt(s.cpu_parallelism) + " workers · " + fmtInt(s.cpu_queue_cap) + " queue cap");
    if (typeof cfg.enable_autoscaler === "boolean") {
      var en = $("as-enabled");
      setText(en, cfg.enable_autoscaler ? "on" : "off");
      en.className = cfg.enable_autoscaler ? "on" : "off";
    }
    if (isNum(cfg.autoscale_min_parallelism)) {
      setText("as-bounds-par", fmtInt(cfg.autoscale_min_parallelism) + "–" + fmtInt(cfg.autoscale_max_parallelism) + " workers");
      setText("as-bounds-cap", fmtInt(cfg.autoscale_min_queue_cap) + "–" + fmtInt(cfg.autoscale_max_queue_cap) + " jobs");
      setText("as-window", fmtInt(cfg.autoscale_window) + " obs · " + fmtInt(cfg.autoscale_horizon_secs) + " s");
      setText("as-cooldown", fmtInt(cfg.autoscale_cooldown_secs) + " s");
    }
    var empty = $("autoscaler-empty"), body = $("autoscaler-body");
    if (!a) {
      setText(empty, "no forecast yet");
      empty.hidden = false; body.hidden = true;
      return;
    }
    empty.hidden = true; body.hidden = false;
    var f = a.forecast;
    setText("as-horizon", isNum(cfg.autoscale_horizon_secs) ? "in " + cfg.autoscale_horizon_secs + " s" : "");
    if (f) {
      setText("as-current", fmtRate(f.current_rate) + " jobs/s");
      setText("as-predicted", fmtRate(f.predicted_rate) + " jobs/s");
      setText("as-slope", (f.slope_per_sec >= 0 ? "+" : "") + fmtRate(f.slope_per_sec) + " jobs/s per s");
      setText("as-samples", fmtInt(f.samples) + " observations");
    } else {
      setText("as-current", "no forecast yet");
      setText("as-predicted", "—");
      setText("as-slope", "—");
      setText("as-samples", "—");
    }
    setText("as-parallelism", fmtInt(a.parallelism) + " workers");
    setText("as-queue-cap", fmtInt(a.queue_cap) + " jobs");
    var reason = (a.changed ? "resized: " : "unchanged: ") + (a.reason || "—");
    setText("as-reason", reason);
  }

  var statsPill = null;
  function setStatsState(kind, text) {
    statsPill = statsPill || $("stats-pill");
    statsPill.setAttribute("data-state", kind);
    setText("stats-status", text);
  }

  function pollStats() {
    return getJSON("/api/stats").then(renderStats);
  }

  // ----------------------------------------------------------------- neural

  var heat = { snap: null, cellW: 0, cellH: 22 };

  function renderNeural(n) {
    setText("nn-epsilon", fmtPct(n.epsilon));
    setText("nn-samples", fmtInt(n.sample_count));
    setText("nn-reward", isNum(n.avg_reward) ? n.avg_reward.toFixed(3) : "—");
    var cfg = state.config || {};
    var warmup = isNum(cfg.neural_warmup_samples) ? cfg.neural_warmup_samples : null;
    if (n.warmed_up) {
      setText("nn-warm", "warm");
      setText("nn-warm-sub", cfg.enable_neural === false ? "disabled in config" : "may override the heuristic");
    } else {
      setText("nn-warm", "warming up");
      setText("nn-warm-sub", warmup ? fmtInt(n.sample_count) + " of " + fmtInt(warmup) + " samples" : "heuristic decides");
    }
    var strategies = Array.isArray(n.strategies) ? n.strategies : STRATEGIES;
    var rows = (n.per_kind || []).map(function (k) {
      var total = 0;
      (k.per_strategy_samples || []).forEach(function (c) { total += c || 0; });
      var bar = h("div", { class: "share", role: "img", "aria-label": "share of outcomes per strategy" });
      (k.per_strategy_samples || []).forEach(function (c, i) {
        if (!c || !total) return;
        var s = strategies[i];
        var r = (k.per_strategy_avg_reward || [])[i];
        bar.appendChild(h("span", {
          "data-s": s,
          style: "width:" + ((c / total) * 100).toFixed(2) + "%",
          title: strategyLabel(s) + ": " + fmtInt(c) + " outcomes (" + fmtPct(c / total) + "), avg reward " + (isNum(r) ? r.toFixed(3) : "—")
        }));
      });
      return h("tr", null, [
        h("td", null, kindLabel(k.kind)),
        h("td", { class: "num" }, fmtInt(k.samples)),
        h("td", { class: "num col-reward" }, k.samples && isNum(k.avg_reward) ? k.avg_reward.toFixed(3) : "—"),
        h("td", null, k.samples ? chip(k.preferred) : h("span", { class: "muted" }, "no data")),
        h("td", { class: "col-share" }, bar)
      ]);
    });
    replaceChildren($("kind-body"), rows);

    heat.snap = { weights: n.weights || [], features: n.feature_names || [], strategies: strategies };
    var rowLabels = strategies.map(function (s) { return chip(s); });
    replaceChildren($("heat-rows"), rowLabels);
    drawHeat();
  }

  /** Diverging colour: blue (negative) - card grey (0) - orange (positive). */
  function heatColour(t) {
    var base = [28, 35, 44], neg = [56, 139, 253], pos = [240, 136, 62];
    var a = Math.min(1, Math.abs(t)), c = t < 0 ? neg : pos;
    return "rgb(" + Math.round(base[0] + (c[0] - base[0]) * a) + "," +
      Math.round(base[1] + (c[1] - base[1]) * a) + "," + Math.round(base[2] + (c[2] - base[2]) * a) + ")";
  }

  /** Feature family: the name with every "=value" removed ("bias", "log2_cost_ns&scaling"). */
  function featureGroup(name) { return String(name).replace(/=[^&]*/g, ""); }
  /** "log2_cost_over_budget&pressure" -> "cost/budget × pressure". */
  function groupLabel(key) {
    return key.replace(/log2_/g, "").replace(/_(ms|ns|secs)\b/g, "").replace(/_over_/g, "/")
      .replace(/&/g, " × ").replace(/_/g, " ");
  }

  function drawHeat() {
    var snap = heat.snap;
    var canvas = $("heatmap");
    if (!snap || !canvas) return;
    var rows = snap.weights.length, cols = rows ? snap.weights[0].length : 0;
    var cssW = canvas.clientWidth || 600;
    var cssH = Math.max(1, rows) * heat.cellH;
    var dpr = window.devicePixelRatio || 1;
    canvas.style.height = cssH + "px";
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    if (!cols) return;
    // Colour scale: the 98th percentile of |weight|, so one outlier does not wash
    // out the rest; cells beyond it are drawn at full colour.
    var mags = [];
    snap.weights.forEach(function (r) { r.forEach(function (w) { if (isNum(w) && w !== 0) mags.push(Math.abs(w)); }); });
    mags.sort(function (a, b) { return a - b; });
    heat.maxAbs = mags.length ? mags[Math.min(mags.length - 1, Math.floor(mags.length * 0.98))] || mags[mags.length - 1] : 1;
    var clipped = mags.length && mags[mags.length - 1] > heat.maxAbs;
    var cw = cssW / cols;
    heat.cellW = cw;
    for (var r = 0; r < rows; r++) {
      for (var c = 0; c < cols; c++) {
        var w = snap.weights[r][c];
        ctx.fillStyle = isNum(w) ? heatColour(w / heat.maxAbs) : "#000";
        ctx.fillRect(c * cw, r * heat.cellH, Math.ceil(cw), heat.cellH - 1);
      }
    }
    setText("heat-min", (clipped ? "≤ " : "") + "−" + heat.maxAbs.toFixed(2));
    setText("heat-max", (clipped ? "≥ " : "") + "+" + heat.maxAbs.toFixed(2));

    // Group labels under the columns.
    var groups = [], cur = null;
    snap.features.forEach(function (f, i) {
      var g = featureGroup(f);
      if (!cur || cur.key !== g) { cur = { key: g, start: i, end: i }; groups.push(cur); } else cur.end = i;
    });
    var nodes = groups.map(function (g) {
      var n = g.end - g.start + 1;
      var label = groupLabel(g.key);
      return h("span", {
        style: "left:" + (g.start * cw).toFixed(1) + "px;width:" + Math.max(0, n * cw - 2).toFixed(1) + "px",
        title: label + " (" + n + " features)"
      }, label);
    });
    var gEl = $("heat-groups");
    gEl.style.width = cssW + "px";
    replaceChildren(gEl, nodes);
  }

  function onHeatHover(ev) {
    var snap = heat.snap;
    if (!snap || !heat.cellW) return;
    var rect = ev.target.getBoundingClientRect();
    var c = Math.floor((ev.clientX - rect.left) / heat.cellW);
    var r = Math.floor((ev.clientY - rect.top) / heat.cellH);
    var row = snap.weights[r];
    if (!row || c < 0 || c >= row.length) return;
    var out = $("heat-hover");
    replaceChildren(out, [
      h("b", null, strategyLabel(snap.strategies[r])), " · ",
      snap.features[c] || ("feature " + c), " · weight ",
      h("b", null, isNum(row[c]) ? row[c].toFixed(4) : "—")
    ]);
  }

  function pollNeural() { return getJSON("/api/neural").then(renderNeural); }

  // ----------------------------------------------------------------- config

  var CONFIG_UNITS = [
    [/^(inline|spawn)_threshold$/, "ns"],
    [/_ms$/, "ms"],
    [/_secs$/, "s"],
    [/parallelism$/, "workers"],
    [/(_cap|busy_threshold|max_size|decision_log_cap)$/, "jobs"],
    [/warmup_samples$/, "samples"],
    [/^autoscale_window$/, "observations"]
  ];
  function configUnit(key) {
    for (var i = 0; i < CONFIG_UNITS.length; i++) if (CONFIG_UNITS[i][0].test(key)) return CONFIG_UNITS[i][1];
    return "";
  }
  function configValue(key, v) {
    if (typeof v === "boolean") return h("span", { class: v ? "on" : "off" }, v ? "on" : "off");
    if (v === null) return h("span", { class: "muted" }, "none");
    if (typeof v === "number") {
      var unit = configUnit(key);
      if (unit === "ns") return withUnit(fmtNs(v));
      var text = Number.isInteger(v) ? fmtInt(v) : String(v);
      return unit ? withUnit(text + " " + unit) : document.createTextNode(text);
    }
    if (typeof v === "object") return document.createTextNode(JSON.stringify(v));
    return document.createTextNode(String(v));
  }
  function renderConfig(cfg) {
    state.config = cfg;
    var keys = Object.keys(cfg || {});
    var rows = keys.map(function (k) {
      return h("tr", { "data-key": k }, [h("td", null, k), h("td", { class: "num" }, configValue(k, cfg[k]))]);
    });
    replaceChildren($("config-body"), rows.length ? rows : h("tr", null, h("td", { class: "muted" }, "empty")));
  }
  function pollConfig() { return getJSON("/api/config").then(renderConfig); }

  // ------------------------------------------------------------------- feed

  var feed = {
    pending: [],           // decisions received, not yet in the DOM (newest last)
    paused: false,
    missed: 0,
    arrivals: [],          // arrival times (ms) within the last second, for the rate
    es: null,
    attempt: 0,
    retryTimer: 0,
    countdownTimer: 0
  };

  function setSse(kind, text) {
    $("sse-pill").setAttribute("data-state", kind);
    setText("sse-status", text);
    $("feed-wrap").classList.toggle("stale", kind === "down");
  }

  function onDecision(ev) {
    var d;
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    if (!d || typeof d !== "object") return;
    var now = Date.now();
    feed.arrivals.push(now);
    if (feed.paused) return;
    feed.pending.push(d);
    // Only the newest FEED_MAX can ever be shown: drop older ones right away.
    if (feed.pending.length > FEED_MAX) feed.pending.splice(0, feed.pending.length - FEED_MAX);
  }

  function onLagged(ev) {
    var n = 0;
    try { n = JSON.parse(ev.data).missed || 0; } catch (e) { n = 0; }
    feed.missed += n;
    setText("feed-missed", fmtInt(feed.missed));
    $("feed-lagged").hidden = false;
  }

  function decisionRow(d, flash) {
    var src = d.source || "";
    return h("tr", { class: flash ? "feed-row fresh" : "feed-row", "data-job-id": String(d.job_id), "data-s": d.strategy }, [
      h("td", { class: "col-time" }, fmtClock(d.timestamp_ms)),
      h("td", { class: "num" }, "#" + d.job_id),
      h("td", { class: "col-kind" }, kindLabel(d.kind)),
      d["class"] == null ? h("td", { class: "col-class na" }, "—")
                         : h("td", { class: "col-class", title: String(d["class"]) }, String(d["class"])),
      h("td", null, chip(d.strategy, true)),
      h("td", { class: "col-source src src-" + src }, src.replace("_", " ")),
      h("td", { class: "num col-cost" }, withUnit(fmtNs(d.compute_cost))),
      h("td", { class: "num" }, withUnit(fmtPct(d.pressure, 0))),
      h("td", { class: "num col-busy" }, withUnit(fmtInt(d.cpu_busy) + " jobs"))
    ]);
  }

  function flushFeed() {
    var now = Date.now();
    while (feed.arrivals.length && feed.arrivals[0] < now - 1000) feed.arrivals.shift();
    setText("feed-rate", fmtInt(feed.arrivals.length));
    if (!feed.pending.length) return;
    var body = $("feed");
    var frag = document.createDocumentFragment();
    // Flash new rows only while they arrive slowly enough to be read one by one.
    var flash = feed.pending.length <= 2;
    for (var i = feed.pending.length - 1; i >= 0; i--) frag.appendChild(decisionRow(feed.pending[i], flash));
    feed.pending.length = 0;
    // Rows from the previous flush are no longer new.
    var olds = body.querySelectorAll("tr.fresh");
    for (var j = 0; j < olds.length; j++) olds[j].classList.remove("fresh");
    body.insertBefore(frag, body.firstChild);
    while (body.rows.length > FEED_MAX) body.deleteRow(body.rows.length - 1);
    $("feed-empty").hidden = body.rows.length > 0;
  }

  function connectSse() {
    clearTimeout(feed.retryTimer);
    clearInterval(feed.countdownTimer);
    if (feed.es) { feed.es.close(); feed.es = null; }
    setSse(feed.attempt ? "down" : "connecting", feed.attempt ? "disconnected — reconnecting…" : "connecting");
    var es;
    try { es = new EventSource("/api/stream/decisions"); } catch (e) { scheduleReconnect(); return; }
    feed.es = es;
    es.onopen = function () {
      feed.attempt = 0;
      setSse("live", "live");
    };
    es.onmessage = onDecision;
    es.addEventListener("lagged", onLagged);
    es.onerror = function () {
      // The browser would retry on its own at a fixed pace; take over so retries back off.
      if (feed.es !== es) return;
      es.close();
      feed.es = null;
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    var base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, feed.attempt));
    var delay = Math.round(base * (0.75 + Math.random() * 0.5));
    feed.attempt++;
    var due = Date.now() + delay;
    function show() {
      var left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setSse("down", "disconnected — reconnecting in " + left + " s");
    }
    show();
    clearInterval(feed.countdownTimer);
    feed.countdownTimer = setInterval(show, 1000);
    feed.retryTimer = setTimeout(connectSse, delay);
  }

  // ------------------------------------------------------------------- boot

  function boot() {
    $("feed-cap").textContent = String(FEED_MAX);
    $("feed").setAttribute("data-max", String(FEED_MAX));

    $("feed-pause").addEventListener("click", function () {
      feed.paused = !feed.paused;
      feed.pending.length = 0;
      this.setAttribute("aria-pressed", String(feed.paused));
      this.textContent = feed.paused ? "resume" : "pause";
    });
    $("heatmap").addEventListener("mousemove", onHeatHover);
    var resizeTimer = 0;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawHeat, 150);
    });

    pollLoop(pollConfig, CONFIG_MS);
    pollLoop(pollStats, STATS_MS, function (err, failures) {
      setStatsState(failures > 1 ? "down" : "connecting", failures > 1 ? "unreachable — retrying" : "retrying");
    });
    pollLoop(pollNeural, NEURAL_MS);
    setInterval(flushFeed, FEED_FLUSH_MS);
    setInterval(function () {
      if (!state.lastStatsAt) return;
      var age = (Date.now() - state.lastStatsAt) / 1000;
      setText("stats-age", age < 1.5 ? "just now" : Math.round(age) + " s ago");
      if (age > 5) setStatsState("down", "stale " + Math.round(age) + " s");
    }, 1000);
    connectSse();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
