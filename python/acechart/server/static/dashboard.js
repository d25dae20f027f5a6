// The acechart dashboard: ECharts over the acechart API, no build step, nothing from a CDN.
//
// Data comes as MessagePack columns (layout=columns: each series' times and values as
// little-endian float64 `bin` fields), decoded by the vendored @msgpack/msgpack. Raw data is
// asked for at the chart's pixel width (maxPoints, MinMaxLTTB), and every zoom asks again
// for the visible window, so a year can be explored down to raw samples. Interval data
// comes from /api/aggregations and is drawn as the average with a min/max band. A chart is
// lines, bars (interval buckets), dots, or a heat map (hour of day x date of the first
// point's hourly buckets). The page's state lives in its query string (a link reproduces
// the chart); the token in localStorage.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const DAY = 86400000;
  const PRESETS = { "1h": 3600000, "1d": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY, "365d": 365 * DAY };
  const INTERVAL_MS = { "1min": 60000, "5min": 300000, "1hr": 3600000, "1day": DAY };
  const PALETTE = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"];
  // The heat map's scale, low to high: the same stops the server's thumbnails use.
  const HEAT = ["#313695", "#4575b4", "#74add1", "#abd9e9", "#e0f3f8", "#ffffbf", "#fee090", "#fdae61", "#f46d43", "#d73027", "#a50026"];
  const TYPES = ["line", "bar", "scatter", "heatmap"];
  const BROWSER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const TOKEN_KEY = "acechart.token";

  const state = {
    site: "", points: [], range: "1d", start: null, end: null,
    interval: "auto", stat: "avg", tz: "site", type: "line", chart: null, zoom: null,
  };
  const meta = new Map();     // point name -> {displayName, unit, pointType}
  const debug = { requests: [], draws: 0, lastDraw: null };
  window.acechartDebug = debug;  // read by the browser tests and handy in the console
  let token = "";
  let chart = null;
  let chartKind = null;       // what the ECharts instance was set up for: "time" or "heatmap"
  let siteTz = null;          // the site's zone, as the last answer for tz=site named it
  let siteTzMissing = false;  // the site record has no coordinates: tz=site is a 400, draw in UTC
  let drawSeq = 0;
  let controller = null;
  let openChart = null;       // the saved chart on screen {id, owned, title, ...}
  let zoomTimer = null;
  let lastDrawn = null;       // {t0, t1, w0, w1, interval, width, series}

  // --- the token -------------------------------------------------------------------------

  function readToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("token")) {
      localStorage.setItem(TOKEN_KEY, hash.get("token"));
      hash.delete("token");
      const rest = hash.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    }
    token = localStorage.getItem(TOKEN_KEY) || "";
    $("token-box").hidden = !!token;
    $("token-forget").hidden = !token;
  }

  // --- URL state -----------------------------------------------------------------------------

  function loadUrl() {
    const p = new URLSearchParams(location.search);
    const hash = new URLSearchParams(location.hash.slice(1));
    state.site = p.get("site") || hash.get("site") || "";
    state.points = p.getAll("point");
    if (!state.points.length && hash.get("point")) state.points = [hash.get("point")];
    state.range = p.get("range") || "1d";
    if (!(state.range in PRESETS) && state.range !== "custom") state.range = "1d";
    state.start = p.get("start");
    state.end = p.get("end");
    state.interval = p.get("interval") || "auto";
    state.stat = p.get("stat") || "avg";
    state.tz = p.get("tz") || "site";
    state.type = TYPES.includes(p.get("type")) ? p.get("type") : "line";
    state.chart = p.get("chart");
    const zoom = (p.get("zoom") || "").split(",").map(Number);
    state.zoom = zoom.length === 2 && zoom.every(Number.isFinite) && zoom[1] > zoom[0] ? zoom : null;
  }

  function saveUrl() {
    const p = new URLSearchParams();
    if (state.chart) p.set("chart", state.chart);
    if (state.site) p.set("site", state.site);
    for (const name of state.points) p.append("point", name);
    p.set("range", state.range);
    if (state.range === "custom") {
      if (state.start) p.set("start", state.start);
      if (state.end) p.set("end", state.end);
    }
    if (state.interval !== "auto") p.set("interval", state.interval);
    if (state.stat !== "avg") p.set("stat", state.stat);
    if (state.tz !== "site") p.set("tz", state.tz);
    if (state.type !== "line") p.set("type", state.type);
    if (state.zoom) p.set("zoom", state.zoom.map(Math.round).join(","));
    history.replaceState(null, "", location.pathname + "?" + p.toString());
  }

  // --- talking to the API --------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body, headers) {
      super(plainWords(status, body, headers));
      this.status = status;
      this.body = body;
    }
  }

  function plainWords(status, body, headers) {
    const said = body && body.message ? body.message : "";
    switch (status) {
      case 400: return "The server could not use this request: " + said;
      case 401: return "The ACE API does not accept this token. Enter a valid token above.";
      case 403: return "This token may not read that site (" + said + ").";
      case 404: return "Not found: " + said;
      case 413: {
        const n = body && body.estimatedSamples ? " (about " + fmtNumber(body.estimatedSamples) + " samples)" : "";
        return "This query is too large to answer at once" + n + ". Choose a shorter range or a coarser interval (1 hour or 1 day).";
      }
      case 429: {
        const wait = (headers && headers.get("Retry-After")) || (body && body.retryAfter) || "a few";
        return "Too many requests: the server asks to wait " + wait + " seconds. Trying again then.";
      }
      case 502: return "The ACE API failed to answer (" + said + "). Try again in a moment.";
      case 504: return "The ACE API did not answer in time (" + said + "). Try a shorter range, or again later.";
      default: return "The server answered " + status + (said ? ": " + said : ".");
    }
  }

  function query(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === "") continue;
      p.set(k, Array.isArray(v) ? v.join(",") : String(v));
    }
    return p.toString();
  }

  // One request: the token, timing, the cache headers, and a line in the request log.
  async function api(method, path, { body, accept, signal, cache, retry = true } = {}) {
    const headers = { "X-ACE-Token": token };
    if (accept) headers.Accept = accept;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const t = performance.now();
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache });
    const ms = performance.now() - t;
    const record = {
      method, path, status: resp.status, ms,
      cache: resp.headers.get("X-Cache-Status"), source: resp.headers.get("X-Cache-Source"),
      server: resp.headers.get("X-Processing-Time"), samples: resp.headers.get("X-Data-Samples"),
      counts: null, params: Object.fromEntries(new URL(path, location.href).searchParams),
    };
    debug.requests.push(record);
    logRequest(record);
    if (resp.status === 429 && retry) {
      const wait = Number(resp.headers.get("Retry-After")) || 2;
      const body429 = await resp.json().catch(() => null);
      showBanner(plainWords(429, body429, resp.headers));
      await new Promise((r) => setTimeout(r, Math.min(wait, 60) * 1000));
      return api(method, path, { body, accept, signal, cache, retry: false });
    }
    if (!resp.ok && resp.status !== 304) {
      const err = await resp.json().catch(() => null);
      throw new ApiError(resp.status, err, resp.headers);
    }
    return { resp, record };
  }

  async function apiJson(method, path, options) {
    const { resp } = await api(method, path, options);
    return resp.status === 204 ? null : resp.json();
  }

  function logRequest(r) {
    const li = document.createElement("li");
    const bits = [r.method, decodeURIComponent(r.path).slice(0, 160), r.status];
    if (r.cache) bits.push(r.cache + (r.source ? " from " + r.source : ""));
    if (r.server) bits.push("server " + r.server);
    bits.push(Math.round(r.ms) + " ms");
    li.textContent = bits.join(" · ");
    const log = $("log");
    log.prepend(li);
    while (log.children.length > 30) log.lastChild.remove();
  }

  function showBanner(text, info) {
    const b = $("banner");
    b.textContent = text;
    b.className = info ? "info" : "";
    b.hidden = !text;
  }

  // MessagePack columns -> Float64Arrays (bin fields may sit at unaligned offsets: copy).
  function f64(bin) {
    if (!bin) return new Float64Array(0);
    return new Float64Array(bin.slice().buffer);
  }

  // --- formatting --------------------------------------------------------------------------

  function fmtNumber(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const abs = Math.abs(v);
    const d = digits !== undefined ? digits : abs >= 1000 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
    return new Intl.NumberFormat("en-US", { maximumFractionDigits: d }).format(v);
  }

  // The zone times are labelled in: the one the answer used, never the browser's by accident.
  function zone() {
    if (state.tz === "site") return siteTzMissing ? "UTC" : siteTz || "UTC";
    if (state.tz === "browser") return BROWSER_TZ;
    return state.tz;
  }

  const timeFormats = new Map();
  function fmtTime(ms, kind) {
    const key = zone() + "|" + kind;
    let f = timeFormats.get(key);
    if (!f) {
      const options = {
        full: { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" },
        day: { month: "short", day: "2-digit" },
        hour: { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
        minute: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
      }[kind];
      f = new Intl.DateTimeFormat("en-US", { timeZone: zone(), ...options });
      timeFormats.set(key, f);
    }
    return f.format(new Date(ms));
  }

  // --- the chart -----------------------------------------------------------------------------

  function fullRange() {
    if (state.range === "custom" && state.start && state.end) {
      const s = Date.parse(state.start), e = Date.parse(state.end);
      if (Number.isFinite(s) && Number.isFinite(e) && e > s) return [s, e];
    }
    const span = PRESETS[state.range] || DAY;
    const now = Date.now();
    return [now - span, now];
  }

  // The plot's width in pixels: the span of the visible window on the drawn x axis.
  function plotWidth() {
    if (chart && chartKind === "time" && lastDrawn) {
      const [a0, a1] = state.zoom || [lastDrawn.t0, lastDrawn.t1];
      try {
        const a = chart.convertToPixel({ xAxisIndex: 0 }, Math.max(a0, lastDrawn.t0));
        const b = chart.convertToPixel({ xAxisIndex: 0 }, Math.min(a1, lastDrawn.t1));
        if (Number.isFinite(a) && Number.isFinite(b) && b > a) return Math.max(10, Math.round(b - a));
      } catch (e) { /* not drawn yet */ }
    }
    return Math.max(100, $("chart").clientWidth - 200);
  }

  // The interval `auto` draws a chart type with (the server's thumbnails follow the same
  // rule, server/charts.py auto_interval): heat maps hourly; lines and dots raw samples up
  // to 3 days, else the finest interval with at most two buckets per pixel; bars the finest
  // with at most one bucket per 4 pixels.
  function autoInterval(span, width, type) {
    if (type === "heatmap") return "1hr";
    if (type !== "bar" && span <= 3 * DAY) return "raw";
    const perPixel = type === "bar" ? 0.25 : 2;
    for (const name of ["1min", "5min", "1hr", "1day"]) {
      if (span / INTERVAL_MS[name] <= perPixel * width) return name;
    }
    return "1day";
  }

  function label(name) {
    const m = meta.get(name);
    return (m && m.displayName) || name.split(/[/.]/).slice(-2).join(".");
  }

  function isBinary(name) {
    const m = meta.get(name);
    return !!(m && m.pointType && m.pointType.toLowerCase().startsWith("binary"));
  }

  function unitOf(name) {
    if (isBinary(name)) return "state";
    const m = meta.get(name);
    return (m && m.unit) || "";
  }

  // Width of the widest label an axis will show, so axes beside each other do not overlap.
  const measurer = document.createElement("canvas").getContext("2d");
  function labelWidth(lo, hi, unit) {
    measurer.font = "12px sans-serif";
    // Ticks are round numbers beyond the data's ends: measure one step further out too.
    const step = Math.pow(10, Math.floor(Math.log10(Math.max(Math.abs(hi - lo), 1e-9))));
    let widest = measurer.measureText("off").width;
    for (const v of [lo, hi, lo - step, hi + step, (lo + hi) / 2]) {
      widest = Math.max(widest, measurer.measureText(fmtNumber(v) + (unit ? " " + unit : "")).width);
    }
    return Math.ceil(widest) + 14;
  }

  // One y axis per unit, alternating left and right; axes on one side stand side by side,
  // each as wide as its widest label. The grid's margins are those widths added up, so no
  // label is ever cut (containLabel makes no room for axes offset beside others).
  function axes(series, bars) {
    const units = [];
    for (const s of series) if (!units.includes(s.unit)) units.push(s.unit);
    const margins = { left: 0, right: 0 };
    const list = units.map((unit, i) => {
      const own = series.filter((s) => s.unit === unit);
      let lo = Infinity, hi = -Infinity;
      for (const s of own) { lo = Math.min(lo, s.lo); hi = Math.max(hi, s.hi); }
      if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
      if (bars) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }  // bars stand on zero
      const position = i % 2 === 0 ? "left" : "right";
      const binary = unit === "state";
      const offset = margins[position];
      margins[position] += binary ? labelWidth(0, 1, "") : labelWidth(lo, hi, unit);
      return {
        type: "value", name: unit, position, offset, scale: !binary && !bars,
        min: binary ? 0 : undefined, max: binary ? 1 : undefined, interval: binary ? 1 : undefined,
        nameTextStyle: { align: position === "left" ? "right" : "left" },
        axisLine: { show: true }, axisTick: { show: true },
        splitLine: { show: i === 0 },
        axisLabel: { formatter: binary ? (v) => (v >= 0.5 ? "on" : "off") : (v) => fmtNumber(v) + (unit ? " " + unit : "") },
      };
    });
    return { list, margins };
  }

  function timeLabel(value) {
    const span = lastDrawn ? lastDrawn.w1 - lastDrawn.w0 : DAY;
    return fmtTime(value, span > 4 * DAY ? "day" : span > DAY ? "hour" : "minute");
  }

  // The ECharts instance, set up afresh when the kind of axes changes (time or heat map).
  function ensureChart(kind) {
    if (chart && chartKind === kind) return chart;
    if (chart) chart.dispose();
    chartKind = kind;
    chart = echarts.init($("chart"), null, { renderer: "svg" });
    debug.chart = chart;
    chart.on("datazoom", onZoom);
    return chart;
  }

  new ResizeObserver(() => {
    if (!chart) return;
    chart.resize();
    // Asked again only when the plot's width changed enough to matter.
    if (lastDrawn && Math.abs(plotWidth() - lastDrawn.width) > lastDrawn.width * 0.1) scheduleDraw("resize", 400);
  }).observe($("chart"));

  // One ECharts series of a point, as the chart type draws it: a line (steps for a binary
  // point), bars (centred on their bucket, side by side), or dots.
  function seriesOption(s, i, yAxisIndex, interval) {
    const color = PALETTE[i % PALETTE.length];
    const common = { id: state.type + ":" + s.name, name: s.label, yAxisIndex, color, z: 3 };
    if (state.type === "bar") {
      const half = interval in INTERVAL_MS ? INTERVAL_MS[interval] / 2 : 0;
      return { ...common, type: "bar", data: s.data.map(([t, v]) => [t + half, v]), barGap: "10%", barCategoryGap: "20%", large: s.data.length > 2000 };
    }
    if (state.type === "scatter") {
      return { ...common, type: "scatter", data: s.data, symbolSize: 4, large: s.data.length > 2000 };
    }
    return {
      ...common, type: "line", data: s.data,
      showSymbol: s.data.length < 60, symbolSize: 4, step: s.step ? "end" : false,
      connectNulls: false, sampling: undefined, lineStyle: { width: 1.5 },
    };
  }

  function render(series, t0, t1, interval) {
    if (state.type === "heatmap") { renderHeatmap(series[0], t0, t1); return; }
    const c = ensureChart("time");
    const { list: yAxis, margins } = axes(series, state.type === "bar");
    const units = yAxis.map((a) => a.name);
    const out = [];
    series.forEach((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      const yAxisIndex = units.indexOf(s.unit);
      if (s.band && state.type === "line") {
        // The band: the minimum (invisible), then max - min stacked on it and filled.
        out.push({
          id: "band-lo:" + s.name, name: s.label, type: "line", stack: "band:" + s.name, yAxisIndex,
          data: s.band.lo, showSymbol: false, lineStyle: { opacity: 0 }, silent: true, z: 1, color,
        });
        out.push({
          id: "band-hi:" + s.name, name: s.label, type: "line", stack: "band:" + s.name, yAxisIndex,
          data: s.band.span, showSymbol: false, lineStyle: { opacity: 0 }, silent: true, z: 1, color,
          areaStyle: { color, opacity: 0.18 },
        });
      }
      out.push(seriesOption(s, i, yAxisIndex, interval));
    });
    const first = !c.getOption() || !c.getOption().series;
    const option = {
      animation: false,
      color: PALETTE,
      // The grid leaves room for every axis label, however long (a counter at 27,850,000 kWh
      // keeps its leading digits): its margins are the measured widths of the axes' labels.
      grid: { left: 8 + margins.left, right: 8 + Math.max(margins.right, 24), top: 48, bottom: 64, containLabel: false },
      legend: { top: 4, type: "scroll", data: series.map((s) => s.label) },
      tooltip: { trigger: "axis", axisPointer: { type: "cross", label: { formatter: (p) => (p.axisDimension === "x" ? fmtTime(p.value, "full") : fmtNumber(p.value)) } }, formatter: tooltip },
      xAxis: { type: "time", min: t0, max: t1, axisLabel: { formatter: timeLabel, hideOverlap: true }, splitLine: { show: false } },
      yAxis,
      series: out,
    };
    if (first) {
      option.dataZoom = [
        { type: "inside", xAxisIndex: 0, filterMode: "none" },
        { type: "slider", xAxisIndex: 0, filterMode: "none", height: 22, bottom: 8, labelFormatter: (v) => fmtTime(v, "hour") },
      ];
    }
    // The tooltip points at the old series by index: hide it before they are replaced.
    c.dispatchAction({ type: "hideTip" });
    c.setOption(option, { replaceMerge: ["series", "yAxis"] });
    if (first && state.zoom) {
      c.dispatchAction({ type: "dataZoom", startValue: state.zoom[0], endValue: state.zoom[1] });
    }
  }

  // The local date (YYYY-MM-DD) and wall-clock hour of an instant in the chart's zone.
  const clockFormats = new Map();
  function wallClock(ms) {
    let f = clockFormats.get(zone());
    if (!f) {
      f = new Intl.DateTimeFormat("en-CA", { timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", hourCycle: "h23" });
      clockFormats.set(zone(), f);
    }
    const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
    return { date: p.year + "-" + p.month + "-" + p.day, hour: Number(p.hour) % 24 };
  }

  // Every local date from the one holding t0 to the one holding t1 - 1.
  function datesBetween(t0, t1) {
    const [first, last] = [wallClock(t0).date, wallClock(Math.max(t0, t1 - 1)).date];
    const out = [];
    for (let d = Date.parse(first + "T00:00:00Z"); out.length < 4000; d += DAY) {
      const text = new Date(d).toISOString().slice(0, 10);
      out.push(text);
      if (text >= last) break;
    }
    return out;
  }

  const HOURS = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, "0") + ":00");

  // The heat map: one point's hourly buckets, hour of day (rows, midnight at the top) by
  // local date (columns), coloured on one scale (visualMap) from its lowest to its highest.
  function renderHeatmap(s, t0, t1) {
    const c = ensureChart("heatmap");
    const dates = datesBetween(t0, t1);
    const column = new Map(dates.map((d, i) => [d, i]));
    const data = [];
    let lo = Infinity, hi = -Infinity;
    for (const [t, v] of s ? s.data : []) {
      if (v === null) continue;
      const { date, hour } = wallClock(t);
      if (!column.has(date)) continue;
      data.push([column.get(date), hour, v]);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    const unit = s ? unitOf(s.name) : "";
    const label = (v) => fmtNumber(v) + (unit ? " " + unit : "");
    c.setOption({
      animation: false,
      title: { text: s ? s.label + " · hourly " + statName() : "", left: "center", top: 4, textStyle: { fontSize: 13, fontWeight: "normal" } },
      // Room below the dates for the colour scale and the values its handles show.
      grid: { left: 8 + labelWidth(0, 0, "00:00"), right: 24, top: 36, bottom: 104, containLabel: false },
      tooltip: {
        trigger: "item",
        formatter: (p) => escapeHtml(dates[p.value[0]] + " " + HOURS[p.value[1]] + " (" + zone() + ")") + ": <b>" + escapeHtml(label(p.value[2])) + "</b>",
      },
      xAxis: { type: "category", data: dates, splitArea: { show: false }, axisLabel: { hideOverlap: true } },
      yAxis: { type: "category", data: HOURS, inverse: true, axisLabel: { interval: 2 } },
      visualMap: {
        type: "continuous", min: lo, max: hi, calculable: true, orient: "horizontal",
        left: "center", bottom: 10, itemHeight: 240, inRange: { color: HEAT },
        formatter: (v) => label(v),
      },
      series: [{ id: "heatmap:" + (s ? s.name : ""), name: s ? s.label : "", type: "heatmap", data, progressive: 0 }],
    }, { notMerge: true });
  }

  function statName() {
    return $("stat").selectedOptions.length ? $("stat").selectedOptions[0].textContent : state.stat;
  }

  // The readout: every charted point at the hovered time (ECharts' axis tooltip lists only
  // the series with a sample nearest to it, and points rarely share timestamps).
  function tooltip(params) {
    if (!params.length || !lastDrawn) return "";
    const t = params[0].axisValue;
    const rows = [fmtTime(t, "full")];
    lastDrawn.series.forEach((s, i) => {
      const k = sampleAt(s.data, t, s.step || state.type === "bar");
      if (k < 0) return;
      const v = s.data[k][1];
      let text = s.step ? (v === null ? "–" : v >= 0.5 ? "on" : "off") : fmtNumber(v) + (s.unit ? " " + s.unit : "");
      if (s.band && s.band.lo[k] && s.band.lo[k][1] !== null) {
        const lo = s.band.lo[k][1];
        text += " <span style=\"color:#6b7280\">(" + fmtNumber(lo) + " – " + fmtNumber(lo + s.band.span[k][1]) + ")</span>";
      }
      const when = Math.abs(s.data[k][0] - t) > 1000 ? " <span style=\"color:#6b7280\">at " + fmtTime(s.data[k][0], "minute") + "</span>" : "";
      const dot = "<span style=\"display:inline-block;margin-right:4px;border-radius:5px;width:9px;height:9px;background:" + PALETTE[i % PALETTE.length] + "\"></span>";
      rows.push(dot + escapeHtml(s.label) + ": <b>" + text + "</b>" + when);
    });
    return rows.join("<br>");
  }

  // The sample shown at time t: the last one at or before t for steps, else the nearest.
  function sampleAt(data, t, step) {
    let lo = 0, hi = data.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (data[mid][0] <= t) lo = mid; else hi = mid - 1;
    }
    if (data[lo][0] > t) return step ? -1 : 0;
    if (!step && lo + 1 < data.length && data[lo + 1][0] - t < t - data[lo][0]) return lo + 1;
    return lo;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function onZoom() {
    if (!lastDrawn) return;
    const dz = chart.getOption().dataZoom[0];
    const { t0, t1 } = lastDrawn;
    let w0 = dz.startValue, w1 = dz.endValue;
    if (!Number.isFinite(w0) || !Number.isFinite(w1)) {
      w0 = t0 + ((t1 - t0) * dz.start) / 100;
      w1 = t0 + ((t1 - t0) * dz.end) / 100;
    }
    const whole = w0 <= t0 + 1 && w1 >= t1 - 1;
    state.zoom = whole ? null : [Math.round(w0), Math.round(w1)];
    saveUrl();
    scheduleDraw("zoom", 250);
  }

  function scheduleDraw(reason, delay) {
    clearTimeout(zoomTimer);
    zoomTimer = setTimeout(() => draw(reason), delay);
  }

  // The series of one answer, as ECharts data plus what the tooltip and axes need.
  function seriesOf(doc, interval) {
    const out = [];
    for (const s of doc.series || []) {
      const t = f64(s.t);
      const v = f64(s.v || s.avg);
      const data = new Array(t.length);
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < t.length; i++) {
        const x = v[i];
        const ok = Number.isFinite(x);
        data[i] = [t[i], ok ? x : null];
        if (ok) { if (x < lo) lo = x; if (x > hi) hi = x; }
      }
      let band = null;
      if (s.min && s.max && !isBinary(s.name)) {
        const mn = f64(s.min), mx = f64(s.max);
        band = { lo: new Array(t.length), span: new Array(t.length) };
        for (let i = 0; i < t.length; i++) {
          const ok = Number.isFinite(mn[i]) && Number.isFinite(mx[i]);
          band.lo[i] = [t[i], ok ? mn[i] : null];
          band.span[i] = [t[i], ok ? mx[i] - mn[i] : null];
          if (ok) { lo = Math.min(lo, mn[i]); hi = Math.max(hi, mx[i]); }
        }
      }
      out.push({ name: s.name, label: label(s.name), unit: unitOf(s.name), step: isBinary(s.name), data, band, lo, hi, count: t.length });
    }
    return out;
  }

  async function draw(reason) {
    if (!token || !state.site || !state.points.length) {
      if (chart) chart.clear();
      lastDrawn = null;
      $("status").textContent = state.site ? "Pick one or more points to chart." : "";
      return;
    }
    const [t0, t1] = fullRange();
    const heatmap = state.type === "heatmap";
    // A heat map shows the whole range (its axes are dates and hours: nothing to zoom).
    let [w0, w1] = (!heatmap && state.zoom) || [t0, t1];
    w0 = Math.max(w0, t0); w1 = Math.min(w1, t1);
    if (w1 <= w0) { w0 = t0; w1 = t1; }
    const width = plotWidth();
    const interval = state.interval === "auto" || heatmap ? autoInterval(w1 - w0, width, state.type) : state.interval;
    const seq = ++drawSeq;
    if (controller) controller.abort();
    controller = new AbortController();
    const started = performance.now();
    const points = heatmap ? state.points.slice(0, 1) : state.points;
    const common = { site: state.site, points, start: new Date(Math.floor(w0)).toISOString(), end: new Date(Math.ceil(w1)).toISOString() };
    // By default the site's zone: local days for interval data, and the answer names the
    // zone (metadata.timeZone) that raw and interval times are labelled in.
    if (state.tz === "site") {
      if (!siteTzMissing) common.tz = "site";
    } else {
      common.tz = state.tz === "browser" ? BROWSER_TZ : state.tz;
    }
    let path;
    if (interval === "raw") {
      path = "/api/timeseries?" + query({ ...common, maxPoints: width, downsample: "minmaxlttb", format: "msgpack", layout: "columns", async: "true" });
    } else if (state.stat === "avg" && !heatmap) {
      path = "/api/aggregations?" + query({ ...common, interval, format: "msgpack", layout: "columns" });
    } else {
      path = "/api/timeseries?" + query({ ...common, interval, stat: state.stat, format: "msgpack", layout: "columns", async: "true" });
    }
    $("status").textContent = "Loading " + points.length + " point(s), " + (interval === "raw" ? "raw at " + width + " px" : interval + " buckets") + "…";
    try {
      let resp, record;
      try {
        ({ resp, record } = await api("GET", path, { accept: "application/x-msgpack", signal: controller.signal }));
      } catch (err) {
        // A site without coordinates has no zone of its own: draw it in UTC and say so.
        if (err instanceof ApiError && err.status === 400 && err.body && err.body.parameter === "tz" && common.tz === "site") {
          siteTzMissing = true;
          timeFormats.clear();
          renderControls();
          if (seq === drawSeq) draw(reason);
          return;
        }
        throw err;
      }
      if (resp.status === 202) {
        ({ resp, record } = await followJob(await resp.json(), controller.signal));
      }
      const doc = MessagePack.decode(new Uint8Array(await resp.arrayBuffer()));
      if (seq !== drawSeq) return;
      const md = doc.metadata || {};
      if (common.tz === "site") {
        siteTz = md.timeZone || "UTC";  // metadata names the zone unless it is UTC
        timeFormats.clear();
        renderControls();
      }
      const series = seriesOf(doc, interval);
      record.counts = Object.fromEntries(series.map((s) => [s.name, s.count]));
      lastDrawn = { t0, t1, w0, w1, interval, width, series, path };
      render(series, t0, t1, interval);
      showBanner("");
      const samples = series.reduce((n, s) => n + s.count, 0);
      const bits = [
        series.length + " series", fmtNumber(samples, 0) + " points drawn",
        heatmap ? "heat map of the first point: hourly " + state.stat + " by hour and date"
          : interval === "raw" ? "raw samples, downsampled to " + width + " px (MinMaxLTTB)"
          : interval + " " + (state.stat === "avg" ? (state.type === "line" ? "averages, min–max band" : "averages") : state.stat),
        "cache " + (record.cache || "–") + (record.source ? " from " + record.source : ""),
        "server " + (record.server || "–"), Math.round(performance.now() - started) + " ms in all",
        "times in " + zone() + (state.tz === "site" && siteTzMissing ? " (the site record has no coordinates)" : ""),
      ];
      $("status").textContent = bits.join(" · ");
      debug.draws += 1;
      debug.lastDraw = { reason, type: state.type, interval, width, w0, w1, counts: record.counts, path };
    } catch (err) {
      if (err.name === "AbortError" || seq !== drawSeq) return;
      showBanner(err.message || String(err));
      $("status").textContent = "";
    }
  }

  // A 202: follow the job's progress, then fetch its result as MessagePack columns.
  async function followJob(accepted, signal) {
    const box = $("job"), bar = $("job-progress"), text = $("job-text");
    box.hidden = false;
    try {
      for (;;) {
        const job = await apiJson("GET", accepted.statusUrl, { signal });
        bar.value = job.progress || 0;
        text.textContent = "Large query running in the background: " + (job.progress || 0) + "%" +
          (job.estimatedRemaining ? ", about " + job.estimatedRemaining + " s left" : "") + " (job " + accepted.jobId.slice(0, 8) + ")";
        if (job.status === "completed") {
          return await api("GET", job.resultUrl + "?format=msgpack&layout=columns", { accept: "application/x-msgpack", signal });
        }
        if (job.status === "failed" || job.status === "cancelled") {
          throw new Error("The background job " + job.status + ": " + (job.message || job.error || ""));
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      box.hidden = true;
    }
  }

  // --- sites and points ----------------------------------------------------------------------

  async function loadSites() {
    const select = $("site");
    select.textContent = "";
    const body = await apiJson("GET", "/api/sites?per_page=1000");
    for (const s of body.items || []) {
      const o = document.createElement("option");
      o.value = s.name;
      o.textContent = s.nice_name && s.nice_name !== s.name ? s.nice_name + " (" + s.name + ")" : s.name;
      select.append(o);
    }
    if (!state.site && select.options.length) state.site = select.options[0].value;
    select.value = state.site;
  }

  async function search() {
    const list = $("results");
    if (!state.site) { list.textContent = ""; return; }
    const q = $("q").value.trim();
    const body = await apiJson("GET", "/api/points?" + query({ site: state.site, q, limit: 200 }));
    list.textContent = "";
    for (const p of body.points) {
      meta.set(p.name, p);
      const li = document.createElement("li");
      li.dataset.name = p.name;
      li.title = p.name;
      li.className = state.points.includes(p.name) ? "on" : "";
      const name = document.createElement("span");
      name.className = "label";
      name.textContent = p.displayName || p.name;
      const unit = document.createElement("span");
      unit.className = "unit";
      unit.textContent = p.unit || "";
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = (p.pointType || "").replace(/^(analog|binary|multiState)/i, (m) => m.toLowerCase()).replace(/(Input|Output|Value)$/, "");
      li.append(name, unit, kind);
      li.addEventListener("click", () => togglePoint(p.name));
      list.append(li);
    }
  }

  // Catalogue entries of charted points the search has not shown (a link, a saved chart).
  async function describe(names) {
    for (const name of names) {
      if (meta.has(name)) continue;
      const body = await apiJson("GET", "/api/points?" + query({ site: state.site, q: name, limit: 20 }));
      for (const p of body.points) meta.set(p.name, p);
    }
  }

  function togglePoint(name) {
    const i = state.points.indexOf(name);
    if (i >= 0) state.points.splice(i, 1); else state.points.push(name);
    state.zoom = null;
    changed();
  }

  function renderSelected() {
    const ul = $("selected");
    ul.textContent = "";
    for (const name of state.points) {
      const li = document.createElement("li");
      li.title = name;
      const span = document.createElement("span");
      span.textContent = label(name) + (unitOf(name) && unitOf(name) !== "state" ? " (" + unitOf(name) + ")" : "");
      const x = document.createElement("button");
      x.type = "button";
      x.textContent = "×";
      x.setAttribute("aria-label", "Remove " + label(name));
      x.addEventListener("click", () => togglePoint(name));
      li.append(span, x);
      ul.append(li);
    }
    for (const li of $("results").children) li.className = state.points.includes(li.dataset.name) ? "on" : "";
  }

  function renderControls() {
    for (const b of $("presets").querySelectorAll("button")) b.classList.toggle("active", b.dataset.range === state.range);
    $("custom").hidden = state.range !== "custom";
    $("type").value = state.type;
    $("interval").value = state.interval;
    // A heat map is always of hourly buckets.
    $("interval").disabled = state.type === "heatmap";
    $("stat").value = state.stat;
    zoneOption(state.tz);
    $("tz").value = state.tz;
    $("tz-site").title = siteTzMissing ? "the site record has no coordinates: UTC" : siteTz || "";
    const owned = !!(openChart && openChart.owned);
    $("update").disabled = !owned;
    $("delete").disabled = !owned;
    $("heading").textContent = openChart ? "Saved chart: " + (openChart.title || "(untitled)") + " · " + openChart.viewCount + " views" + (openChart.isPublic ? " · public" : "") + (owned ? "" : " · shared with you") : "";
  }

  // The zone select offers `zone` (a saved chart may name one the list lacks).
  function zoneOption(zone) {
    const select = $("tz");
    if ([...select.options].some((o) => o.value === zone)) return;
    const o = document.createElement("option");
    o.value = o.textContent = zone;
    select.append(o);
  }

  function changed() {
    saveUrl();
    renderSelected();
    renderControls();
    draw("change");
  }

  // --- saved charts --------------------------------------------------------------------------

  function chartBody() {
    const range = state.range === "custom"
      ? { start: new Date(fullRange()[0]).toISOString(), end: new Date(fullRange()[1]).toISOString() }
      : { start: "-" + state.range, end: "now" };
    const q = { ...range };
    if (state.interval !== "auto") q.interval = state.interval;
    if (state.stat !== "avg") q.stat = state.stat;
    // The zone is always saved: "site", or a zone the server knows ("this browser's" is
    // saved as the browser's zone, so the thumbnail and another browser draw the same).
    q.tz = state.tz === "browser" ? BROWSER_TZ : state.tz;
    const option = chart ? chart.getOption() : {};
    const heatmap = state.type === "heatmap";
    const skeleton = {
      title: { text: $("chart-title").value.trim() },
      legend: { data: (heatmap ? state.points.slice(0, 1) : state.points).map(label) },
      yAxis: (option.yAxis || []).map((a) => ({ type: a.type, name: a.name, position: a.position })),
      series: heatmap
        ? [{ type: "heatmap", name: label(state.points[0]) }]
        : state.points.map((p) => ({ type: state.type, name: label(p), ...(state.type === "line" ? { step: isBinary(p) ? "end" : false } : {}) })),
    };
    return {
      siteId: state.site, chartType: state.type, title: $("chart-title").value.trim() || null,
      pointNames: state.points, isPublic: $("chart-public").checked, query: q,
      configJson: { echarts: skeleton, acechart: { range: state.range, interval: state.interval, stat: state.stat, tz: state.tz, type: state.type, zoom: state.zoom } },
    };
  }

  async function saveChart(asNew) {
    if (!state.site || !state.points.length) { showBanner("Pick a site and at least one point before saving."); return; }
    try {
      const saved = asNew
        ? await apiJson("POST", "/api/charts", { body: chartBody() })
        : await apiJson("PUT", "/api/charts/" + openChart.id, { body: chartBody() });
      openChart = saved;
      state.chart = saved.id;
      saveUrl();
      renderControls();
      showBanner((asNew ? "Saved" : "Updated") + " “" + (saved.title || "untitled") + "”.", true);
      await loadSaved();
    } catch (err) {
      showBanner(err.message);
    }
  }

  async function deleteChart() {
    if (!openChart) return;
    try {
      await apiJson("DELETE", "/api/charts/" + openChart.id);
      showBanner("Deleted “" + (openChart.title || "untitled") + "”.", true);
      openChart = null;
      state.chart = null;
      saveUrl();
      renderControls();
      await loadSaved();
    } catch (err) {
      showBanner(err.message);
    }
  }

  async function openSaved(id) {
    try {
      const c = await apiJson("GET", "/api/charts/" + encodeURIComponent(id));
      openChart = c;
      state.chart = c.id;
      if (state.site !== c.siteId) { siteTz = null; siteTzMissing = false; }
      state.site = c.siteId;
      state.points = c.pointNames.slice();
      const q = c.query || {};
      const cfg = (c.configJson && c.configJson.acechart) || {};
      const rel = /^-(\d+(?:h|d))$/.exec(q.start || "");
      if (rel && (q.end || "now") === "now" && rel[1] in PRESETS) {
        state.range = rel[1];
      } else if (q.start && q.end) {
        state.range = "custom";
        state.start = q.start;
        state.end = q.end;
      }
      state.interval = q.interval || cfg.interval || "auto";
      state.stat = q.stat || "avg";
      state.tz = q.tz || "site";  // charts saved before the zone was always stored: the site's
      state.type = TYPES.includes(c.chartType) ? c.chartType : "line";
      state.zoom = cfg.zoom || null;
      $("chart-title").value = c.title || "";
      $("chart-public").checked = !!c.isPublic;
      $("site").value = state.site;
      lastDrawn = null;
      if (chart) { chart.dispose(); chart = null; }
      await describe(state.points);
      changed();
      markOpen();
    } catch (err) {
      showBanner(err.status === 404 ? "That saved chart does not exist, or is not shared with this token." : err.message);
      state.chart = null;
      saveUrl();
    }
  }

  const thumbUrls = new Map();
  async function thumbnail(img, url) {
    try {
      // Revalidated (its ETag) every time: a chart just updated has a new picture, which
      // the browser's cache would otherwise hide until the old one's max-age ran out.
      const { resp } = await api("GET", url, { cache: "no-cache" });
      const blob = await resp.blob();
      const old = thumbUrls.get(img.dataset.id);
      if (old) URL.revokeObjectURL(old);
      const src = URL.createObjectURL(blob);
      thumbUrls.set(img.dataset.id, src);
      img.src = src;
    } catch (err) {
      img.alt = "thumbnail unavailable";
    }
  }

  function savedItem(c) {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    const img = document.createElement("img");
    img.dataset.id = c.id;
    img.alt = "Thumbnail of " + (c.title || "untitled");
    img.width = 120;
    img.height = 60;
    thumbnail(img, c.thumbnailUrl);
    const text = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = c.title || "(untitled)";
    const info = document.createElement("div");
    info.className = "meta";
    info.textContent = c.pointNames.length + " point(s) · " + c.viewCount + " views" + (c.isPublic ? " · public" : "");
    text.append(name, info);
    li.append(img, text);
    li.addEventListener("click", () => openSaved(c.id));
    return li;
  }

  async function loadSaved() {
    if (!token) return;
    const [mine, shared] = await Promise.all([
      apiJson("GET", "/api/charts?" + query({ scope: "own", site: state.site, sort: "recent" })),
      state.site ? apiJson("GET", "/api/charts?" + query({ scope: "public", site: state.site, sort: "popular" })) : { charts: [] },
    ]);
    $("mine").replaceChildren(...mine.charts.map(savedItem));
    $("public").replaceChildren(...shared.charts.filter((c) => !c.owned).map(savedItem));
    if (!mine.charts.length) $("mine").innerHTML = "<li class=\"meta\">No saved charts yet.</li>";
    if (!$("public").children.length) $("public").innerHTML = "<li class=\"meta\">None shared on this site.</li>";
    markOpen();
  }

  function markOpen() {
    for (const li of document.querySelectorAll(".saved li")) li.classList.toggle("open", li.dataset.id === state.chart);
  }

  async function downloadCsv() {
    if (!lastDrawn) { showBanner("Draw a chart first."); return; }
    const u = new URL(lastDrawn.path, location.href);
    u.searchParams.set("format", "csv");
    u.searchParams.delete("layout");
    u.searchParams.delete("async");
    try {
      const { resp } = await api("GET", u.pathname + "?" + u.searchParams.toString(), { accept: "text/csv" });
      const blob = await resp.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = (state.site + "_" + new Date(lastDrawn.w0).toISOString().slice(0, 10) + ".csv").replace(/[^\w.-]+/g, "_");
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      showBanner(err.message);
    }
  }

  // --- wiring -------------------------------------------------------------------------------

  function wire() {
    $("token-use").addEventListener("click", () => {
      const v = $("token").value.trim();
      if (!v) return;
      localStorage.setItem(TOKEN_KEY, v);
      location.reload();
    });
    $("token-forget").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
    $("site").addEventListener("change", async () => {
      state.site = $("site").value;
      state.points = [];
      state.zoom = null;
      state.chart = null;
      openChart = null;
      siteTz = null;
      siteTzMissing = false;
      $("q").value = "";
      changed();
      await Promise.all([search(), loadSaved()]).catch((e) => showBanner(e.message));
    });
    let searchTimer = null;
    $("q").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => search().catch((e) => showBanner(e.message)), 250);
    });
    for (const b of $("presets").querySelectorAll("button")) {
      b.addEventListener("click", () => {
        state.range = b.dataset.range;
        if (state.range === "custom") {
          const [s, e] = fullRange();
          const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);
          $("start").value = state.start ? state.start.slice(0, 16) : local(s);
          $("end").value = state.end ? state.end.slice(0, 16) : local(e);
          state.start = new Date($("start").value).toISOString();
          state.end = new Date($("end").value).toISOString();
        }
        state.zoom = null;
        lastDrawn = null;
        changed();
      });
    }
    for (const id of ["start", "end"]) {
      $(id).addEventListener("change", () => {
        const v = $(id).value;
        if (!v) return;
        state[id] = new Date(v).toISOString();
        state.zoom = null;
        changed();
      });
    }
    for (const id of ["type", "interval", "stat", "tz"]) {
      $(id).addEventListener("change", () => {
        state[id] = $(id).value;
        timeFormats.clear();
        changed();
      });
    }
    $("save").addEventListener("click", () => saveChart(true));
    $("update").addEventListener("click", () => saveChart(false));
    $("delete").addEventListener("click", deleteChart);
    $("csv").addEventListener("click", downloadCsv);
  }

  async function start() {
    readToken();
    loadUrl();
    wire();
    renderControls();
    if (!token) {
      showBanner("Enter your ACE token above (or open this page as /#token=...).", true);
      return;
    }
    try {
      await loadSites();
      if (state.chart) {
        await openSaved(state.chart);
      } else {
        await describe(state.points);
        changed();
      }
      await Promise.all([search(), loadSaved()]);
    } catch (err) {
      showBanner(err.message || String(err));
    }
  }

  start();
})();
