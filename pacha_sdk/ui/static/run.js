// One run's page: everything in run.json, rank records, artifacts with download,
// lineage as links, the captured console output, and the run's charts; the "Curate"
// card edits its name, tags and note, archives or deletes it (curate.js), and a run in
// the trash gets a Restore button instead.

import { api, el, formatValue, formatTime, formatDuration, statusText, runLabel, shortId, hparamOrder, metricOrder, getSession } from "./util.js";
import { mountCharts } from "./charts.js";
import { curationCard, deletedView } from "./curate.js";

export function section(title, ...content) {
  return el("section", { class: "card", dataset: { section: title.toLowerCase() } }, el("h2", {}, title), ...content);
}

export function keyValues(rows) {
  return el("table", { class: "kv" }, el("tbody", {}, ...rows
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value instanceof Node ? value : formatValue(value))))));
}

function runLink(link) {
  return el("a", { href: `#/run/${link.run_id}` }, link.name ? `${link.name} (${shortId(link.run_id)})` : shortId(link.run_id));
}

function links(list) {
  if (!list.length) return el("span", { class: "muted" }, "none");
  return el("span", {}, ...list.flatMap((link, i) => (i ? [", ", runLink(link)] : [runLink(link)])));
}

function downloadLink(artifact) {
  const query = new URLSearchParams({ name: artifact.name || artifact.content_hash });
  return el("a", { href: `/api/artifacts/${artifact.content_hash}?${query}`, download: artifact.name || artifact.content_hash, class: "download" }, "download");
}

function artifactsTable(lineage) {
  if (!lineage.produced.length) return el("p", { class: "muted" }, "This run logged no artifacts.");
  return el("table", { class: "grid", id: "artifacts" },
    el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "type"), el("th", {}, "hash"), el("th", {}, "used by"), el("th", {}, ""))),
    el("tbody", {}, ...lineage.produced.map((artifact) => el("tr", {},
      el("td", {}, artifact.name), el("td", {}, artifact.artifact_type),
      el("td", { class: "mono", title: artifact.content_hash }, artifact.content_hash.slice(0, 16) + "…"),
      el("td", {}, links(artifact.used_by)), el("td", {}, downloadLink(artifact))))));
}

function inputsTable(lineage) {
  if (!lineage.used.length) return el("p", { class: "muted" }, "This run used no logged artifacts.");
  return el("table", { class: "grid", id: "inputs" },
    el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "type"), el("th", {}, "hash"), el("th", {}, "produced by"), el("th", {}, ""))),
    el("tbody", {}, ...lineage.used.map((artifact) => el("tr", {},
      el("td", {}, artifact.name ?? ""), el("td", {}, artifact.artifact_type ?? ""),
      el("td", { class: "mono", title: artifact.content_hash }, String(artifact.content_hash).slice(0, 16) + "…"),
      el("td", {}, links(artifact.produced_by)), el("td", {}, downloadLink(artifact))))));
}

function ranksTable(ranks) {
  return el("table", { class: "grid", id: "ranks" },
    el("thead", {}, el("tr", {}, ...["rank", "status", "host", "heartbeat", "error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...ranks.map((rank) => el("tr", {},
      el("td", {}, rank.rank), el("td", {}, rank.status), el("td", {}, rank.hostname ?? rank.extra?.hostname ?? ""),
      el("td", {}, formatTime(rank.heartbeat_at ?? rank.extra?.heartbeat_at)), el("td", { class: "error" }, rank.error_message ?? "")))));
}

function jsonBlock(value) {
  return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

const SHOWN = new Set([
  "name", "tags", "summary", "traceback", "environment", "inputs", "heartbeat_at", "flush_interval", "parent_run_id",
  "sdk_version", "note", "archived", "edited_at", "edited_by",
]);

function header(run) {
  const status = statusText(run);
  return el("div", { class: "run-header" },
    el("h1", { id: "run-name" }, runLabel(run)),
    el("span", { class: `status ${status}`, id: "run-status" }, status),
    el("span", { class: "badge archived", id: "archived-badge", hidden: !run.archived }, "archived"),
    el("a", { href: `#/charts?runs=${run.run_id}`, class: "quiet" }, "charts only"));
}

export function showRun(main, runId) {
  let stopCharts = () => {};
  let stopped = false;
  main.append(el("p", { class: "muted" }, "Loading run…"));
  const load = async () => {
    let run, session;
    try {
      [run, session] = await Promise.all([api(`/api/runs/${encodeURIComponent(runId)}`), getSession()]);
    } catch (error) {
      if (stopped) return;
      if (error.body?.deleted) {
        const readOnly = (await getSession().catch(() => ({ read_only: true }))).read_only;
        main.replaceChildren(deletedView(runId, error.message, { readOnly, onRestored: load }));
      } else {
        main.replaceChildren(el("p", { class: "error", id: "run-error" }, error.message));
      }
      return;
    }
    const [lineage, console_] = await Promise.all([
      api(`/api/runs/${encodeURIComponent(runId)}/lineage`).catch(() => ({ produced: [], used: [] })),
      run.has_console ? api(`/api/runs/${encodeURIComponent(runId)}/console`).catch(() => ({ text: null })) : { text: null },
    ]);
    if (stopped) return;
    const status = statusText(run);
    const extra = run.extra || {};
    const hp = run.hyperparameters_flat || {};
    let top = header(run);
    const curate = curationCard(run, {
      readOnly: session.read_only,
      onChange: (record) => { const next = header(record); top.replaceWith(next); top = next; },
      onDeleted: (deleted) => {
        stopCharts();
        const message = `${runLabel(deleted.record || run)} is in the trash now.`;
        main.replaceChildren(deletedView(runId, message, { readOnly: false, onRestored: load }));
      },
    });
    const overview = keyValues([
      ["run id", el("span", { class: "mono" }, run.run_id)],
      ["status", status],
      ["started", formatTime(run.started_at)],
      ["finished", formatTime(run.finished_at)],
      ["duration", formatDuration(run.duration_secs)],
      ["heartbeat", formatTime(extra.heartbeat_at)],
      ["flush interval", extra.flush_interval !== undefined ? `${extra.flush_interval} s` : null],
      ["recipe", run.recipe ? `${run.recipe.name} ${run.recipe.version.major}.${run.recipe.version.minor}.${run.recipe.version.patch}` : null],
      ["parent run", extra.parent_run_id ? runLink({ run_id: extra.parent_run_id }) : null],
      ["git commit", run.git_commit ? `${run.git_commit}${run.git_dirty ? " (dirty)" : ""}` : null],
      ["log", run.log_uri],
      ["sdk", extra.sdk_version],
    ]);
    const parts = [top, curate, section("Overview", overview)];
    if (run.error_message || extra.traceback) {
      parts.push(section("Error",
        el("p", { class: "error", id: "error-message" }, run.error_message ?? ""),
        extra.traceback ? el("pre", { class: "traceback", id: "traceback" }, String(extra.traceback)) : null));
    }
    parts.push(section("Hyperparameters", keyValues(hparamOrder(Object.keys(hp)).map((name) => [name, hp[name]]))));
    const summary = run.summary || {};
    const names = metricOrder(Object.keys(summary));
    if (names.length) parts.push(section("Latest metrics", keyValues(names.map((name) => [name, summary[name] === null ? "nan" : summary[name]]))));
    parts.push(section("Charts", el("div", { id: "run-charts" })));
    parts.push(section("Artifacts", artifactsTable(lineage)), section("Inputs", inputsTable(lineage)));
    if (run.ranks && run.ranks.length) parts.push(section("Ranks", ranksTable(run.ranks)));
    const hardware = run.hardware || {};
    if (Object.keys(hardware).length) {
      parts.push(section("Hardware", keyValues(Object.entries(hardware))));
    }
    if (extra.environment) parts.push(section("Environment", jsonBlock(extra.environment)));
    if (console_.text !== null && console_.text !== undefined) {
      parts.push(section("Console output", el("pre", { class: "console", id: "console" }, console_.text)));
    }
    const rest = Object.fromEntries(Object.entries(extra).filter(([key]) => !SHOWN.has(key)));
    if (Object.keys(rest).length) parts.push(section("Other fields", jsonBlock(rest)));
    stopCharts();
    main.replaceChildren(...parts);
    stopCharts = mountCharts(main.querySelector("#run-charts"), [run.run_id]);
  };
  load();
  return () => { stopped = true; stopCharts(); };
}
