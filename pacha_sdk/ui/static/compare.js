// Two or more runs side by side: hyperparameter and summary diffs, overlaid charts, and a
// parallel-coordinates view of the hyperparameters against a chosen metric (canvas).

import { api, el, clear, formatValue, runLabel, colorAt, hparamOrder, metricOrder, idsParam, statusText, SYSTEM_PREFIX } from "./util.js";
import { mountCharts } from "./charts.js";
import { section } from "./run.js";

function diffTable(id, runs, names, valueOf) {
  const onlyDiff = el("input", { type: "checkbox", checked: true, id: `${id}-only-diff` });
  const table = el("table", { class: "grid diff", id });
  function render() {
    const rows = names.filter((name) => {
      if (!onlyDiff.checked) return true;
      return new Set(runs.map((run) => JSON.stringify(valueOf(run, name) ?? null))).size > 1;
    });
    const head = el("tr", {}, el("th", {}, ""), ...runs.map((run, i) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = colorAt(i);
      return el("th", {}, swatch, el("a", { href: `#/run/${run.run_id}` }, runLabel(run)));
    }));
    const body = el("tbody", {}, ...rows.map((name) => {
      const values = runs.map((run) => valueOf(run, name));
      const differs = new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1;
      return el("tr", { class: differs ? "differs" : "" }, el("th", {}, name),
        ...values.map((v) => el("td", { class: "num" }, v === undefined ? "—" : formatValue(v))));
    }));
    clear(table).append(el("thead", {}, head), body);
    if (!rows.length) table.append(el("caption", {}, onlyDiff.checked ? "No differences." : "Nothing to show."));
  }
  onlyDiff.addEventListener("change", render);
  render();
  return el("div", {}, el("label", { class: "toggle" }, onlyDiff, " only what differs"), el("div", { class: "table-wrap" }, table));
}

// One vertical axis per hyperparameter that varies (numbers scaled, anything else as
// categories), the chosen metric last; one polyline per run in its colour.
function parallelCoordinates(runs) {
  const metrics = metricOrder(runs.flatMap((run) => Object.keys(run.summary || {}))).filter((m) => !m.startsWith(SYSTEM_PREFIX));
  const select = el("select", { id: "parallel-metric" }, ...metrics.map((m) => el("option", { value: m }, m)));
  const canvas = el("canvas", { id: "parallel", width: 960, height: 360 });
  const hparams = hparamOrder(runs.flatMap((run) => Object.keys(run.hyperparameters || {}))).filter(
    (name) => new Set(runs.map((run) => JSON.stringify(run.hyperparameters?.[name] ?? null))).size > 1);

  function axis(values) {
    const numeric = values.every((v) => v === undefined || v === null || typeof v === "number");
    if (numeric) {
      const nums = values.filter((v) => typeof v === "number" && Number.isFinite(v));
      const low = Math.min(...nums), high = Math.max(...nums);
      const log = nums.length > 1 && low > 0 && high / low >= 100;
      const f = (v) => (log ? Math.log10(v) : v);
      const span = f(high) - f(low) || 1;
      return { at: (v) => (typeof v === "number" && Number.isFinite(v) ? (f(v) - f(low)) / span : null),
        ticks: nums.length ? [[0, formatValue(low)], [1, formatValue(high)]] : [] };
    }
    const cats = [...new Set(values.map((v) => formatValue(v ?? "—")))].sort();
    return { at: (v) => (cats.length === 1 ? 0.5 : cats.indexOf(formatValue(v ?? "—")) / (cats.length - 1)),
      ticks: cats.map((c, i) => [cats.length === 1 ? 0.5 : i / (cats.length - 1), c]) };
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    const width = canvas.width, height = canvas.height;
    const top = 30, bottom = 30, left = 70, right = 90;
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    const metric = select.value;
    const columns = [...hparams.map((name) => ({ name, get: (run) => run.hyperparameters?.[name] })),
      ...(metric ? [{ name: metric, get: (run) => run.summary?.[metric] }] : [])];
    if (columns.length < 1) {
      ctx.fillStyle = "#666";
      ctx.fillText("No hyperparameter differs between these runs.", left, height / 2);
      return;
    }
    const xs = columns.map((_, i) => (columns.length === 1 ? width / 2 : left + (i * (width - left - right)) / (columns.length - 1)));
    const axes = columns.map((column) => axis(runs.map(column.get)));
    const y = (t) => top + (1 - t) * (height - top - bottom);
    ctx.strokeStyle = "#999";
    ctx.fillStyle = "#333";
    columns.forEach((column, i) => {
      ctx.beginPath(); ctx.moveTo(xs[i], y(0)); ctx.lineTo(xs[i], y(1)); ctx.stroke();
      ctx.textAlign = "center";
      ctx.fillText(column.name.length > 22 ? column.name.slice(0, 21) + "…" : column.name, xs[i], 16);
      ctx.textAlign = "right";
      for (const [t, label] of axes[i].ticks) ctx.fillText(label.length > 12 ? label.slice(0, 11) + "…" : label, xs[i] - 4, y(t) + 4);
    });
    runs.forEach((run, r) => {
      ctx.strokeStyle = colorAt(r);
      ctx.lineWidth = 2;
      ctx.beginPath();
      let pen = false;
      columns.forEach((column, i) => {
        const t = axes[i].at(column.get(run));
        if (t === null) { pen = false; return; }
        if (pen) ctx.lineTo(xs[i], y(t)); else ctx.moveTo(xs[i], y(t));
        pen = true;
      });
      ctx.stroke();
    });
    ctx.lineWidth = 1;
  }
  select.addEventListener("change", draw);
  requestAnimationFrame(draw);
  return el("div", {}, el("label", {}, "metric ", select), el("div", { class: "canvas-wrap" }, canvas));
}

export function showCompare(main, params) {
  const ids = idsParam(params);
  let stopCharts = () => {};
  let stopped = false;
  main.append(el("h1", {}, "Compare"));
  if (ids.length < 2) {
    main.append(el("p", { class: "muted" }, "Select two or more runs in the runs table, then press Compare selected."));
    return () => {};
  }
  (async () => {
    const records = await Promise.all(ids.map((id) => api(`/api/runs/${encodeURIComponent(id)}`).catch(() => null)));
    if (stopped) return;
    const runs = records.filter(Boolean).map((run) => ({ ...run, hyperparameters: run.hyperparameters_flat }));
    if (runs.length < records.length) main.append(el("p", { class: "error" }, `${records.length - runs.length} run(s) not found.`));
    const hpNames = hparamOrder(runs.flatMap((run) => Object.keys(run.hyperparameters || {})));
    const metricNames = metricOrder(runs.flatMap((run) => Object.keys(run.summary || {})));
    const fields = ["status", "started", "duration", "recipe", "git commit"];
    const fieldOf = (run, name) => ({
      status: statusText(run), started: run.started_at, duration: run.duration_secs,
      recipe: run.recipe ? `${run.recipe.name}` : undefined, "git commit": run.git_commit ?? undefined,
    })[name];
    main.append(
      section("Runs", diffTable("field-diff", runs, fields, fieldOf)),
      section("Hyperparameters", diffTable("hparam-diff", runs, hpNames, (run, name) => run.hyperparameters?.[name])),
      section("Summary", diffTable("summary-diff", runs, metricNames, (run, name) => run.summary?.[name])),
      section("Parallel coordinates", parallelCoordinates(runs)),
    );
    const charts = el("div", { id: "compare-charts" });
    main.append(section("Charts", charts));
    stopCharts = mountCharts(charts, runs.map((run) => run.run_id));
  })();
  return () => { stopped = true; stopCharts(); };
}
