// Shared helpers: the API client, safe DOM building, formatting, run colours, filters.
// Every string that comes from the store goes into the page through textContent
// (el() below), never through innerHTML, so a run named "<img onerror=...>" is text.

async function answer(response) {
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    const error = new Error(body.error || `HTTP ${response.status}`);
    error.status = response.status;
    error.body = body;
    throw error;
  }
  return body;
}

export async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) query.set(key, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  return answer(await fetch(url, { credentials: "same-origin", cache: "no-store" }));
}

// {read_only, write_token}: asked once per page load. The cookie alone never
// lets a request write: writes carry the token in a header, which only this
// page (same origin) can read from /api/session.
let session = null;
export function getSession() {
  session ??= api("/api/session").catch((error) => { session = null; throw error; });
  return session;
}

// A write route: JSON in, JSON out, the token in X-Pacha-Token.
export async function post(path, body = {}) {
  const { write_token: token } = await getSession();
  return answer(await fetch(path, {
    method: "POST", credentials: "same-origin", cache: "no-store",
    headers: { "Content-Type": "application/json", "X-Pacha-Token": token || "" },
    body: JSON.stringify(body),
  }));
}

// el("td", {class: "num", title: x}, child, "text", ...): children are nodes or text.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export const SYSTEM_PREFIX = "system/";
export const SHORT_ID = 8;

export function shortId(runId) {
  return String(runId).slice(0, SHORT_ID);
}

export function runLabel(run) {
  return run.name ? `${run.name} (${shortId(run.run_id)})` : shortId(run.run_id);
}

export function statusText(run) {
  return run.status === "running" && run.is_stale ? "stale" : run.status;
}

export function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Number(value.toPrecision(6)).toString();
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return "[" + value.map(formatValue).join(", ") + "]";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function formatTime(text) {
  if (!text) return "";
  return String(text).replace("T", " ").replace(/\.\d+/, "");
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const whole = Math.floor(seconds);
  const d = Math.floor(whole / 86400), h = Math.floor((whole % 86400) / 3600);
  const m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${two(h)}h`;
  if (h) return `${h}h ${two(m)}m`;
  if (m) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

// Seconds a run has been going: finished - started, or now - started while running.
export function elapsedSeconds(run) {
  if (run.duration_secs !== null && run.duration_secs !== undefined) return run.duration_secs;
  const started = Date.parse(run.started_at);
  return Number.isFinite(started) ? Math.max(0, (Date.now() - started) / 1000) : null;
}

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

// The colour of the i-th run of a page: the same run keeps it in every panel.
export function colorAt(index) {
  if (index < PALETTE.length) return PALETTE[index];
  return `hsl(${(index * 137.508) % 360}, 65%, 45%)`;
}

export function metricOrder(names) {
  const unique = [...new Set(names)];
  const user = unique.filter((n) => !n.startsWith(SYSTEM_PREFIX)).sort();
  const system = unique.filter((n) => n.startsWith(SYSTEM_PREFIX)).sort();
  return [...user, ...system];
}

const NAMED_HPARAMS = ["learning_rate", "batch_size", "epochs", "weight_decay", "max_grad_norm", "warmup_steps"];

export function hparamOrder(names) {
  const unique = new Set(names);
  const named = NAMED_HPARAMS.filter((n) => unique.has(n));
  const rest = [...unique].filter((n) => !NAMED_HPARAMS.includes(n)).sort();
  return [...named, ...rest];
}

// Hyperparameter names whose values differ among runs (all of them, pacha's named first).
export function varyingHparams(runs) {
  const names = hparamOrder(runs.flatMap((run) => Object.keys(run.hyperparameters || {})));
  return names.filter((name) => {
    const values = new Set(runs.map((run) => JSON.stringify(run.hyperparameters?.[name] ?? null)));
    return values.size > 1;
  });
}

export function routeParams(hash) {
  const [path, query = ""] = hash.replace(/^#/, "").split("?");
  return { path: path || "/", params: new URLSearchParams(query) };
}

export function idsParam(params) {
  return (params.get("runs") || "").split(",").filter(Boolean);
}
