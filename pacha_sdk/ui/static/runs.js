// The runs table: every run, sortable by any column, filtered by status, text and
// conditions, paginated so 10,000 runs stay responsive (sorting and filtering run
// over plain arrays; only one page of rows is ever in the DOM). Archived runs are
// listed only when "show archived" is ticked; the selected runs can be archived,
// tagged or deleted in bulk (curate.js) unless the server is read-only.

import {
  api, el, clear, shortId, statusText, formatValue, formatTime, formatDuration,
  elapsedSeconds, varyingHparams, metricOrder, SYSTEM_PREFIX, getSession,
} from "./util.js";
import { parseFilter, matches, FilterError } from "./filter.js";
import { setLive } from "./app.js";
import { bulkToolbar } from "./curate.js";

const PAGE_SIZE = 100;
const STATUSES = ["all", "running", "stale", "completed", "failed", "cancelled", "pending"];
const selected = new Set(JSON.parse(sessionStorage.getItem("pacha.selected") || "[]"));

function saveSelection() {
  sessionStorage.setItem("pacha.selected", JSON.stringify([...selected]));
}

function columnsFor(runs, showSystem) {
  const hparams = varyingHparams(runs);
  const metricNames = metricOrder(runs.flatMap((run) => Object.keys(run.summary || {})))
    .filter((name) => showSystem || !name.startsWith(SYSTEM_PREFIX));
  return [
    { key: "name", label: "name", get: (r) => r.name ?? "" },
    { key: "id", label: "id", get: (r) => r.run_id, show: (r) => shortId(r.run_id), mono: true },
    { key: "status", label: "status", get: statusText },
    { key: "started", label: "started", get: (r) => r.started_at, show: (r) => formatTime(r.started_at) },
    { key: "duration", label: "duration", get: elapsedSeconds, show: (r) => formatDuration(elapsedSeconds(r)), num: true },
    {
      key: "tags", label: "tags",
      get: (r) => Object.entries(r.tags || {}).map(([k, v]) => (v ? `${k}=${v}` : k)).join(", "),
    },
    ...hparams.map((name) => ({
      key: `hp:${name}`, label: name, group: "hp", num: true,
      get: (r) => r.hyperparameters?.[name], show: (r) => formatValue(r.hyperparameters?.[name]),
    })),
    ...metricNames.map((name) => ({
      key: `m:${name}`, label: name, group: "metric", num: true,
      get: (r) => r.summary?.[name], show: (r) => formatValue(r.summary?.[name]),
    })),
  ];
}

function compareValues(a, b) {
  const missingA = a === undefined || a === null || a === "";
  const missingB = b === undefined || b === null || b === "";
  if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

export function showRuns(main, params) {
  let stopped = false;
  let timer = null;
  const state = {
    runs: [], status: params.get("status") || "all", query: params.get("q") || "",
    sort: { key: "started", dir: -1 }, page: 0, showSystem: false, showArchived: false,
  };

  const filterBox = el("input", {
    type: "search", id: "filter", placeholder: "filter: text, or e.g. learning_rate < 0.01 and loss < 0.3",
    value: state.query, spellcheck: false, size: 60,
  });
  const statusSelect = el("select", { id: "status-filter" }, ...STATUSES.map((s) => el("option", { value: s }, s)));
  statusSelect.value = state.status;
  const systemToggle = el("label", { class: "toggle" }, el("input", { type: "checkbox", id: "show-system" }), " system metrics");
  const archivedToggle = el("label", { class: "toggle" }, el("input", { type: "checkbox", id: "show-archived" }), " show archived");
  const message = el("span", { class: "filter-message", id: "filter-message" });
  const chartButton = el("button", { id: "chart-selected", type: "button" }, "Chart selected");
  const compareButton = el("button", { id: "compare-selected", type: "button" }, "Compare selected");
  const clearButton = el("button", { id: "clear-selection", type: "button", class: "quiet" }, "Clear selection");
  const count = el("span", { class: "muted", id: "run-count" });
  const table = el("table", { class: "runs", id: "runs-table" });
  const pager = el("div", { class: "pager" });
  const listed = (run) => state.showArchived || !run.archived;
  const bulk = bulkToolbar({
    selectedRuns: () => state.runs.filter((run) => selected.has(run.run_id) && listed(run)),
    onUpdated: (records) => {
      for (const record of records) {
        const entry = state.runs.find((run) => run.run_id === record.run_id);
        if (entry) Object.assign(entry, { name: record.name, tags: record.tags, note: record.note, archived: record.archived });
        if (entry && !listed(entry)) selected.delete(entry.run_id);
      }
      saveSelection();
      render();
    },
    onDeleted: (ids) => {
      const gone = new Set(ids);
      state.runs = state.runs.filter((run) => !gone.has(run.run_id));
      for (const id of ids) selected.delete(id);
      saveSelection();
      render();
    },
  });
  main.append(
    el("div", { class: "toolbar" }, filterBox, statusSelect, systemToggle, archivedToggle, message),
    el("div", { class: "toolbar" }, chartButton, compareButton, clearButton, count,
      el("a", { href: "#/trash", id: "trash-link", class: "push-right" }, "Trash")),
    bulk.element,
    el("div", { class: "table-wrap" }, table),
    pager,
  );

  function visibleRuns() {
    let clauses = [];
    message.textContent = "";
    try {
      clauses = parseFilter(state.query);
    } catch (error) {
      if (!(error instanceof FilterError)) throw error;
      message.textContent = error.message;
    }
    const wanted = state.status;
    return state.runs.filter((run) => listed(run) && (wanted === "all" || statusText(run) === wanted) && matches(run, clauses));
  }

  function updateButtons() {
    chartButton.disabled = selected.size === 0;
    compareButton.disabled = selected.size < 2;
    clearButton.disabled = selected.size === 0;
    bulk.update(selected.size);
  }

  function render() {
    const columns = columnsFor(state.runs, state.showSystem);
    const column = columns.find((c) => c.key === state.sort.key) || columns[3];
    const rows = visibleRuns().sort((a, b) => state.sort.dir * compareValues(column.get(a), column.get(b)));
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const pageRows = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    const total = state.runs.filter(listed).length;
    const countText = () => `${rows.length} of ${total} runs · ${selected.size} selected`;
    count.textContent = countText();

    const allBox = el("input", {
      type: "checkbox", title: "select every run the filter shows",
      checked: rows.length > 0 && rows.every((r) => selected.has(r.run_id)),
      onchange: (event) => {
        for (const run of rows) event.target.checked ? selected.add(run.run_id) : selected.delete(run.run_id);
        saveSelection();
        render();
      },
    });
    const head = el("tr", {}, el("th", { class: "select" }, allBox), ...columns.map((c) =>
      el("th", {
        class: [c.num ? "num" : "", c.group || "", c.key === column.key ? "sorted" : ""].join(" ").trim(),
        title: `sort by ${c.label}`, dataset: { key: c.key },
        onclick: () => {
          state.sort = { key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : c.num ? -1 : 1 };
          render();
        },
      }, c.label, c.key === column.key ? (state.sort.dir > 0 ? " ▲" : " ▼") : ""),
    ));
    const body = el("tbody", {}, ...pageRows.map((run) => el("tr", { dataset: { runId: run.run_id }, class: run.archived ? "archived" : "" },
      el("td", { class: "select" }, el("input", {
        type: "checkbox", checked: selected.has(run.run_id), title: "select",
        onchange: (event) => {
          event.target.checked ? selected.add(run.run_id) : selected.delete(run.run_id);
          saveSelection();
          updateButtons();
          count.textContent = countText();
        },
      })),
      ...columns.map((c) => {
        if (c.key === "name") {
          return el("td", { class: "name" }, el("a", { href: `#/run/${run.run_id}` }, run.name || shortId(run.run_id)));
        }
        if (c.key === "status") {
          const status = statusText(run);
          return el("td", {}, el("span", { class: `status ${status}`, title: run.error_message || "" }, status),
            run.archived ? el("span", { class: "badge archived" }, "archived") : null);
        }
        const text = c.show ? c.show(run) : formatValue(c.get(run));
        return el("td", { class: [c.num ? "num" : "", c.mono ? "mono" : ""].join(" ").trim() }, text);
      }),
    )));
    clear(table).append(el("thead", {}, head), body);
    clear(pager).append(
      el("button", { type: "button", disabled: state.page === 0, onclick: () => { state.page -= 1; render(); } }, "‹ Prev"),
      el("span", { class: "muted" }, ` page ${state.page + 1} of ${pages} `),
      el("button", { type: "button", disabled: state.page >= pages - 1, onclick: () => { state.page += 1; render(); } }, "Next ›"),
    );
    if (state.runs.length === 0) {
      table.append(el("caption", {}, "No runs in this store yet."));
    }
    updateButtons();
  }

  async function load() {
    const started = performance.now();
    try {
      const [runs, session] = await Promise.all([api("/api/runs", { archived: "all" }), getSession()]);
      state.runs = runs;
      bulk.element.hidden = session.read_only;
    } catch (error) {
      if (!stopped) clear(main).append(el("p", { class: "error" }, `Could not list runs: ${error.message}`));
      return;
    }
    if (stopped) return;
    render();
    const running = state.runs.filter((run) => run.status === "running" && !run.is_stale);
    setLive(running.length > 0);
    if (running.length) {
      // About the runs' flush interval, but at most a fifth of the time spent listing a big store.
      const interval = Math.min(...running.map((run) => Number(run.flush_interval) || 5));
      const took = (performance.now() - started) / 1000;
      timer = setTimeout(load, Math.max(2, 5 * took, Math.min(interval, 30)) * 1000);
    }
  }

  let typing = null;
  filterBox.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.query = filterBox.value; state.page = 0; render(); }, 120);
  });
  statusSelect.addEventListener("change", () => { state.status = statusSelect.value; state.page = 0; render(); });
  systemToggle.firstChild.addEventListener("change", (event) => { state.showSystem = event.target.checked; render(); });
  archivedToggle.firstChild.addEventListener("change", (event) => { state.showArchived = event.target.checked; state.page = 0; render(); });
  const go = (page, min) => () => {
    if (selected.size >= min) location.hash = `#/${page}?runs=${[...selected].join(",")}`;
  };
  chartButton.addEventListener("click", go("charts", 1));
  compareButton.addEventListener("click", go("compare", 2));
  clearButton.addEventListener("click", () => { selected.clear(); saveSelection(); render(); });
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
