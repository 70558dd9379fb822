// Metric charts with uPlot: one panel per metric, the selected runs overlaid, each run
// in the same colour in every panel. The server thins each series to about twice the
// panel's width (keeping each bucket's first, last, lowest and highest point), and
// while a run is running the page asks only for points after the last step it has.
//
// Controls: x axis (step, relative time, wall time), EMA smoothing (debiased as in
// TensorBoard and W&B), log scale, a metric filter. Drag to zoom, wheel to zoom at the
// cursor, shift+drag to pan, double-click to reset; zoom and hover are shared by panels.

import { api, el, clear, runLabel, statusText, colorAt, metricOrder, idsParam, SYSTEM_PREFIX, shortId } from "./util.js";
import { setLive } from "./app.js";
import { smooth, nearestValue, formatLegend, wheelAndPan } from "./plot.js";

const FETCH_CONCURRENCY = 6;
const REFETCH_FACTOR = 4; // re-thin a live series once it grows this far past max_points

export function mountCharts(container, runIds, { showControls = true, legend = false } = {}) {
  let stopped = false;
  let timer = null;
  const syncKey = `pacha-${Math.random().toString(36).slice(2)}`;
  const runs = new Map(); // run_id -> run record (from /api/runs/<id>)
  const colors = new Map(runIds.map((id, i) => [id, colorAt(i)]));
  const series = new Map(); // `${metric}\n${run_id}` -> {step, value, timestamp, lastStep}
  const panels = new Map(); // metric -> {root, plot}
  const settings = { x: "step", smoothing: 0, log: false, filter: "", system: false };
  let zooming = false;
  let wasLive = new Set();
  const details = new Map(); // the zoom window's points, read at full resolution
  let zoomWindow = null;
  let zoomTimer = null;

  const grid = el("div", { class: "charts", id: "charts" });
  const note = el("p", { class: "muted" });
  if (showControls) container.append(controls());
  container.append(note, grid);

  function controls() {
    const xSelect = el("select", { id: "x-axis" },
      el("option", { value: "step" }, "step"),
      el("option", { value: "relative" }, "relative time"),
      el("option", { value: "wall" }, "wall time"));
    const slider = el("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: 0 });
    const shown = el("span", { class: "mono", id: "smoothing-value" }, "0.00");
    const log = el("input", { type: "checkbox", id: "log-scale" });
    const system = el("input", { type: "checkbox", id: "chart-system" });
    const filter = el("input", { type: "search", id: "metric-filter", placeholder: "metric name contains…" });
    xSelect.addEventListener("change", () => { settings.x = xSelect.value; redrawAll(true); });
    slider.addEventListener("input", () => {
      settings.smoothing = Number(slider.value);
      shown.textContent = settings.smoothing.toFixed(2);
      redrawAll(false);
    });
    log.addEventListener("change", () => { settings.log = log.checked; redrawAll(true); });
    system.addEventListener("change", () => { settings.system = system.checked; layout(); });
    filter.addEventListener("input", () => { settings.filter = filter.value.toLowerCase(); layout(); });
    return el("div", { class: "toolbar chart-controls" },
      el("label", {}, "x axis ", xSelect),
      el("label", {}, "smoothing ", slider, " ", shown),
      el("label", { class: "toggle" }, log, " log scale"),
      el("label", { class: "toggle" }, system, " system metrics"),
      filter,
      el("span", { class: "muted hint" }, "drag: zoom · wheel: zoom · shift+drag: pan · double-click: reset"));
  }

  function runChips() {
    const chips = el("div", { class: "run-legend", id: "chart-runs" });
    for (const id of runIds) {
      const run = runs.get(id);
      if (!run) continue;
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = colors.get(id);
      chips.append(el("a", { href: `#/run/${id}`, class: "run-chip" }, swatch, runLabel(run), " · ", statusText(run)));
    }
    return chips;
  }

  function metricsOf() {
    return metricOrder([...runs.values()].flatMap((run) => Object.keys(run.summary || {})));
  }

  function xValues(run, data) {
    if (settings.x === "step") return data.step;
    if (settings.x === "wall") return data.timestamp;
    const start = Date.parse(run.started_at) / 1000;
    const origin = Number.isFinite(start) ? start : data.timestamp[0] ?? 0;
    return data.timestamp.map((t) => t - origin);
  }

  // Zoomed in on steps: the points of the window, read again at full resolution, replace
  // the overview's there (the overview is thinned for the whole run).
  function withDetail(metric, id) {
    const key = `${metric}\n${id}`;
    const overview = series.get(key);
    const detail = details.get(key);
    if (!overview || !detail || !zoomWindow || settings.x !== "step") return overview;
    const out = { step: [], value: [], timestamp: [], lastStep: overview.lastStep };
    const push = (from, i) => { out.step.push(from.step[i]); out.value.push(from.value[i]); out.timestamp.push(from.timestamp[i]); };
    for (let i = 0; i < overview.step.length && overview.step[i] < zoomWindow.lo; i++) push(overview, i);
    for (let i = 0; i < detail.step.length; i++) push(detail, i);
    for (let i = 0; i < overview.step.length; i++) if (overview.step[i] > zoomWindow.hi) push(overview, i);
    return out;
  }

  function zoomed(u) {
    if (settings.x !== "step") return;
    const xs = u.data[0];
    const { min, max } = u.scales.x;
    if (!xs.length || min === null || max === null) return;
    if (min <= xs[0] && max >= xs[xs.length - 1]) return; // the whole run: nothing to refine
    clearTimeout(zoomTimer);
    zoomTimer = setTimeout(() => refine(Math.max(0, Math.floor(min)), Math.ceil(max)), 300);
  }

  async function refine(lo, hi) {
    zoomWindow = { lo, hi };
    details.clear();
    const jobs = [];
    for (const [metric, panel] of panels) {
      if (!panel.plot || !panel.root.isConnected) continue;
      for (const id of runIds) {
        const have = series.get(`${metric}\n${id}`);
        if (have && have.step.length) jobs.push([metric, id]);
      }
    }
    const queue = [...jobs];
    const changed = new Set();
    async function worker() {
      while (queue.length && !stopped) {
        const [metric, id] = queue.shift();
        const answer = await api(`/api/runs/${encodeURIComponent(id)}/metrics`, {
          name: metric, max_points: maxPoints(), min_step: lo, max_step: hi,
        }).catch(() => null);
        if (!answer || zoomWindow?.lo !== lo || zoomWindow?.hi !== hi) continue;
        details.set(`${metric}\n${id}`, answer);
        changed.add(metric);
      }
    }
    await Promise.all(Array.from({ length: FETCH_CONCURRENCY }, worker));
    if (stopped || zoomWindow?.lo !== lo || zoomWindow?.hi !== hi) return;
    for (const metric of changed) {
      drawPanel(metric, true);
      const counts = runIds.map((id) => details.get(`${metric}\n${id}`)?.step.length ?? 0);
      panels.get(metric).root.dataset.windowPoints = String(counts.reduce((a, b) => a + b, 0));
    }
    grid.dataset.zoom = `${lo}-${hi}`;
  }

  function buildData(metric) {
    const tables = [];
    const seriesOpts = [{}];
    for (const id of runIds) {
      const run = runs.get(id);
      const data = withDetail(metric, id);
      if (!run || !data || data.step.length === 0) continue;
      let xs = xValues(run, data);
      let ys = data.value;
      const order = xs.map((_, i) => i);
      if (xs.some((x, i) => i > 0 && x < xs[i - 1])) order.sort((a, b) => xs[a] - xs[b]);
      xs = order.map((i) => xs[i]);
      ys = order.map((i) => ys[i]);
      if (settings.log) ys = ys.map((v) => (v > 0 ? v : null));
      // uPlot.join needs strictly increasing x per table: keep the last value at a repeated x.
      const keepX = [], keepY = [];
      for (let i = 0; i < xs.length; i++) {
        if (keepX.length && keepX[keepX.length - 1] === xs[i]) keepY[keepY.length - 1] = ys[i];
        else { keepX.push(xs[i]); keepY.push(ys[i]); }
      }
      const color = colors.get(id);
      const label = runLabel(run);
      if (settings.smoothing > 0) {
        tables.push([keepX, smooth(keepY, settings.smoothing), keepY]);
        seriesOpts.push({ label, stroke: color, width: 1.6, spanGaps: true, dataset: id });
        seriesOpts.push({ label: `${label} raw`, stroke: color + "40", width: 1, spanGaps: true, dataset: id, raw: true });
      } else {
        tables.push([keepX, keepY]);
        seriesOpts.push({ label, stroke: color, width: 1.6, spanGaps: true, dataset: id });
      }
    }
    if (!tables.length) return null;
    return { data: tables.length === 1 ? tables[0] : uPlot.join(tables), seriesOpts };
  }

  function panelWidth() {
    const full = grid.clientWidth || 1200;
    const columns = Math.max(1, Math.floor((full + 16) / 580));
    // Each figure adds 2 x 0.8rem of padding and a border; panels are 16 px apart.
    return Math.max(300, Math.floor((full - 16 * (columns - 1)) / columns) - 30);
  }

  function drawPanel(metric, keepScale) {
    const panel = panels.get(metric);
    if (!panel) return;
    const built = buildData(metric);
    const body = panel.body;
    if (!built) {
      if (panel.plot) { panel.plot.destroy(); panel.plot = null; }
      clear(body).append(el("p", { class: "muted" }, "no points yet"));
      return;
    }
    // What the chart shows, for people reading the DOM (and the tests): runs, points, last step.
    const shownRuns = built.seriesOpts.filter((opt, i) => i > 0 && !opt.raw).map((opt) => opt.dataset);
    panel.root.dataset.runs = String(shownRuns.length);
    panel.root.dataset.points = String(shownRuns.reduce((n, id) => n + series.get(`${metric}\n${id}`).step.length, 0));
    panel.root.dataset.lastStep = String(Math.max(...shownRuns.map((id) => series.get(`${metric}\n${id}`).lastStep ?? -1)));
    const sameShape = panel.plot && panel.shape === JSON.stringify([settings.x, settings.log, built.seriesOpts.map((s) => s.label)]);
    if (sameShape) {
      panel.plot.setData(built.data, !keepScale);
      return;
    }
    if (panel.plot) panel.plot.destroy();
    clear(body);
    panel.shape = JSON.stringify([settings.x, settings.log, built.seriesOpts.map((s) => s.label)]);
    const seriesOptions = built.seriesOpts.map((s, i) => (i === 0
      ? { label: settings.x === "step" ? "step" : settings.x === "wall" ? "time" : "seconds",
          value: settings.x === "wall" ? "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" : (u, v) => (v === null ? "--" : formatLegend(v)) }
      : { ...s,
          value: (u, v, sidx, idx) => (idx === null || idx === undefined ? "--" : formatLegend(nearestValue(u.data[sidx], u.data[0], idx))) }));
    const options = {
      width: panelWidth(), height: 260,
      series: seriesOptions,
      scales: { x: { time: settings.x === "wall" }, y: { distr: settings.log ? 3 : 1 } },
      axes: [{}, { size: 60 }],
      legend: { live: true },
      cursor: { sync: { key: syncKey, setSeries: false }, drag: { x: true, y: false } },
      plugins: [wheelAndPan()],
      hooks: {
        setScale: [(u, key) => {
          if (key !== "x" || zooming) return;
          zooming = true;
          for (const other of panels.values()) {
            if (other.plot && other.plot !== u) other.plot.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
          }
          zooming = false;
          zoomed(u);
        }],
      },
    };
    panel.plot = new uPlot(options, built.data, body);
    // The faint raw lines under smoothed ones need no legend entry of their own.
    const rows = panel.plot.root.querySelectorAll(".u-legend .u-series");
    seriesOptions.forEach((opt, i) => { if (opt.raw && rows[i]) rows[i].style.display = "none"; });
    panel.plot.over.addEventListener("dblclick", () => {
      zoomWindow = null;
      details.clear();
      delete grid.dataset.zoom;
      for (const other of panels.values()) delete other.root.dataset.windowPoints;
      clearTimeout(zoomTimer);
      for (const name of panels.keys()) drawPanel(name, false);
      for (const other of panels.values()) if (other.plot) other.plot.setData(other.plot.data, true);
    });
  }

  function redrawAll(reset) {
    for (const panel of panels.values()) {
      if (reset && panel.plot) { panel.plot.destroy(); panel.plot = null; }
    }
    for (const metric of panels.keys()) drawPanel(metric, !reset);
  }

  function visibleMetric(name) {
    if (!settings.system && name.startsWith(SYSTEM_PREFIX)) return false;
    return !settings.filter || name.toLowerCase().includes(settings.filter);
  }

  function layout() {
    const metrics = metricsOf();
    for (const metric of metrics) {
      if (!panels.has(metric)) {
        const body = el("div", { class: "plot" });
        const root = el("figure", { class: "chart", dataset: { metric } }, el("figcaption", {}, metric), body);
        panels.set(metric, { root, body, plot: null });
      }
    }
    clear(grid);
    const shown = metrics.filter(visibleMetric);
    for (const metric of shown) {
      const panel = panels.get(metric);
      grid.append(panel.root);
      if (!panel.plot) drawPanel(metric, false);
    }
    const hidden = metrics.length - shown.length;
    note.textContent = metrics.length === 0 ? "These runs have no metrics yet." : hidden ? `${hidden} metric(s) hidden by the filter or the system toggle.` : "";
  }

  function maxPoints() {
    return Math.max(200, Math.min(8000, panelWidth() * 2));
  }

  async function fetchSeries(metric, id, live) {
    const key = `${metric}\n${id}`;
    const have = series.get(key);
    const afterStep = live && have && have.lastStep !== null ? have.lastStep : undefined;
    let answer;
    try {
      answer = await api(`/api/runs/${encodeURIComponent(id)}/metrics`, { name: metric, max_points: maxPoints(), after_step: afterStep });
    } catch (error) {
      if (error.status === 404) return false;
      throw error;
    }
    if (afterStep !== undefined && have) {
      if (!answer.step.length) return false;
      have.step.push(...answer.step);
      have.value.push(...answer.value);
      have.timestamp.push(...answer.timestamp);
      have.lastStep = answer.last_step;
      if (have.step.length > REFETCH_FACTOR * maxPoints()) return fetchSeries(metric, id, false);
    } else {
      series.set(key, { step: answer.step, value: answer.value, timestamp: answer.timestamp, lastStep: answer.last_step ?? null });
    }
    return true;
  }

  async function inBatches(jobs) {
    const queue = [...jobs];
    const changed = new Set();
    async function worker() {
      while (queue.length && !stopped) {
        const [metric, id, live] = queue.shift();
        if (await fetchSeries(metric, id, live)) changed.add(metric);
      }
    }
    await Promise.all(Array.from({ length: FETCH_CONCURRENCY }, worker));
    return changed;
  }

  async function loadRuns(ids = runIds) {
    const answers = await Promise.all(ids.map((id) => api(`/api/runs/${encodeURIComponent(id)}`).catch((error) => ({ error, id }))));
    const missing = [];
    for (const answer of answers) {
      if (answer.error) missing.push(shortId(answer.id));
      else runs.set(answer.run_id, answer);
    }
    return missing;
  }

  function liveRuns() {
    return [...runs.values()].filter((run) => run.status === "running" && !run.is_stale);
  }

  let pollSeconds = 0;

  async function poll() {
    if (stopped) return;
    const started = performance.now();
    try {
      const before = new Set(metricsOf());
      await loadRuns([...new Set([...wasLive, ...liveRuns().map((run) => run.run_id)])]);
      const targets = new Set([...wasLive, ...liveRuns().map((run) => run.run_id)]);
      wasLive = new Set(liveRuns().map((run) => run.run_id)); // one more fetch after a run ends
      const jobs = [...targets].filter((id) => runs.has(id))
        .flatMap((id) => Object.keys(runs.get(id).summary || {}).map((metric) => [metric, id, true]));
      if (metricsOf().some((m) => !before.has(m))) layout();
      const changed = await inBatches(jobs);
      if (stopped) return;
      for (const metric of changed) drawPanel(metric, true);
    } catch (error) {
      note.textContent = `Live update failed (${error.message}); retrying.`;
    }
    pollSeconds = (performance.now() - started) / 1000;
    schedule();
  }

  function schedule() {
    const live = liveRuns();
    setLive(live.length > 0);
    if (!live.length || stopped) return;
    const interval = Math.min(...live.map((run) => Number(run.flush_interval) || 5));
    timer = setTimeout(poll, Math.max(0.5, 3 * pollSeconds, Math.min(interval, 30)) * 1000);
  }

  async function start() {
    if (!runIds.length) {
      note.textContent = "No runs selected: pick some in the runs table.";
      return;
    }
    const missing = await loadRuns();
    if (stopped) return;
    if (missing.length) container.prepend(el("p", { class: "error" }, `Unknown run(s): ${missing.join(", ")}`));
    if (legend) container.insertBefore(runChips(), note);
    layout();
    wasLive = new Set(liveRuns().map((run) => run.run_id));
    const jobs = runIds.filter((id) => runs.has(id))
      .flatMap((id) => Object.keys(runs.get(id).summary || {}).map((metric) => [metric, id, false]));
    await inBatches(jobs);
    if (stopped) return;
    for (const metric of panels.keys()) drawPanel(metric, false);
    layout();
    container.dataset.loaded = "true";
    schedule();
  }

  start().catch((error) => { note.textContent = `Could not load charts: ${error.message}`; });
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(zoomTimer);
    for (const panel of panels.values()) if (panel.plot) panel.plot.destroy();
  };
}

export function showCharts(main, params) {
  main.append(el("h1", {}, "Charts"));
  return mountCharts(main, idsParam(params), { legend: true });
}
