// The runs table's filter box: free text and conditions, parsed by hand (never eval).
//
//   bert                      name, id, tags or recipe contain "bert" (any case)
//   learning_rate < 0.01      a hyperparameter, compared as a number
//   loss <= 0.3               a metric's latest value
//   status = failed           a field: name, id, status, recipe, duration, tag.KEY
//   optimizer = adam          strings compare as text; ~ means "contains"
//   lr < 0.01 and loss < 0.3  clauses joined by "and", "&&" or ","
//
// hp.NAME and metric.NAME say which one is meant when a name is both.

const OPERATORS = ["<=", ">=", "!=", "==", "=", "<", ">", "~"];
const CLAUSE = /^\s*("[^"]+"|[^\s<>=!~"]+)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*?)\s*$/;

export class FilterError extends Error {}

function unquote(text) {
  return text.length >= 2 && /^(["']).*\1$/.test(text) ? text.slice(1, -1) : text;
}

export function parseFilter(text) {
  const clauses = [];
  for (const part of String(text || "").split(/\s+and\s+|\s*&&\s*|\s*,\s*/i)) {
    if (!part.trim()) continue;
    const match = CLAUSE.exec(part);
    if (match) {
      const raw = unquote(match[3]);
      if (raw === "") throw new FilterError(`"${part.trim()}" needs a value after ${match[2]}`);
      const number = Number(raw);
      clauses.push({
        key: unquote(match[1]),
        op: match[2] === "==" ? "=" : match[2],
        value: raw.trim() !== "" && Number.isFinite(number) ? number : raw,
      });
    } else if (OPERATORS.some((op) => part.includes(op))) {
      throw new FilterError(`could not read "${part.trim()}": write NAME OP VALUE, e.g. loss < 0.3`);
    } else {
      clauses.push({ text: unquote(part.trim()).toLowerCase() });
    }
  }
  return clauses;
}

function lookup(run, key) {
  const hp = run.hyperparameters || {};
  const summary = run.summary || {};
  if (key.startsWith("hp.")) return hp[key.slice(3)];
  if (key.startsWith("metric.")) return summary[key.slice(7)];
  if (key.startsWith("tag.")) return (run.tags || {})[key.slice(4)];
  switch (key) {
    case "name": return run.name ?? "";
    case "id": case "run_id": return run.run_id;
    case "status": return run.status === "running" && run.is_stale ? "stale" : run.status;
    case "recipe": return run.recipe ?? "";
    case "duration": return run.duration_secs;
  }
  if (key in hp) return hp[key];
  if (key in summary) return summary[key];
  return undefined;
}

function compare(actual, op, wanted) {
  if (actual === undefined || actual === null) return false;
  if (op === "~") return String(actual).toLowerCase().includes(String(wanted).toLowerCase());
  let a = actual, b = wanted;
  if (typeof wanted === "number") {
    a = typeof actual === "boolean" ? Number(actual) : Number(actual);
    if (!Number.isFinite(a) && !(a === Infinity || a === -Infinity)) return false;
  } else {
    a = String(actual);
    b = String(wanted);
    if (op === "=" || op === "!=") { a = a.toLowerCase(); b = b.toLowerCase(); }
  }
  switch (op) {
    case "=": return a === b;
    case "!=": return a !== b;
    case "<": return a < b;
    case "<=": return a <= b;
    case ">": return a > b;
    case ">=": return a >= b;
  }
  return false;
}

function textOf(run) {
  const tags = Object.entries(run.tags || {}).map(([k, v]) => `${k} ${v}`).join(" ");
  return `${run.name ?? ""} ${run.run_id} ${tags} ${run.recipe ?? ""}`.toLowerCase();
}

export function matches(run, clauses) {
  return clauses.every((clause) =>
    clause.text !== undefined ? textOf(run).includes(clause.text) : compare(lookup(run, clause.key), clause.op, clause.value),
  );
}
