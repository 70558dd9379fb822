// Curating runs from the page: tags, note, name, archive, delete (after a confirm dialog)
// and restore. Every write goes to the curation routes (POST, a JSON body, the token in
// a header); the page then shows what the server answered, without a reload. Text from
// the store only ever enters the page through el() (textContent), never as HTML.

import { el, clear, post, runLabel, formatTime } from "./util.js";

export function isLive(run) {
  return run.status === "running" && !run.is_stale;
}

export function tagText([name, value]) {
  return value ? `${name}=${value}` : name;
}

// "name" or "name=value" (one tag): what the tag boxes take.
export function parseTag(text) {
  const item = text.trim();
  const at = item.indexOf("=");
  return at < 0 ? { [item]: "" } : { [item.slice(0, at).trim()]: item.slice(at + 1).trim() };
}

const runPath = (runId, action) => `/api/runs/${encodeURIComponent(runId)}/${action}`;
export const annotate = (runId, edit) => post(runPath(runId, "annotations"), edit);
export const deleteRun = (runId, force) => post(runPath(runId, "delete"), { force });
export const restoreRun = (runId) => post(runPath(runId, "restore"));

// Ask before deleting, in a modal <dialog>: a run still running needs the force box ticked.
export function confirmDelete(runs) {
  return new Promise((resolve) => {
    const live = runs.filter(isLive);
    const force = el("input", { type: "checkbox", id: "force-delete" });
    const ok = el("button", { type: "button", id: "confirm-delete", class: "danger", disabled: live.length > 0 }, "Delete");
    const cancel = el("button", { type: "button", id: "cancel-delete" }, "Cancel");
    const what = runs.length === 1 ? runLabel(runs[0]) : `${runs.length} runs`;
    const running = live.length === 1 ? "This run is" : `${live.length} of them are`;
    const dialog = el("dialog", { id: "delete-dialog" },
      el("p", { class: "dialog-title" }, `Move ${what} to the trash?`),
      el("p", { class: "muted" }, "Their records, edits and metric points leave every listing and the Parquet files "
        + "engines read. Restore them from the trash until `pacha gc --trash-older-than` empties it."),
      live.length ? el("label", { class: "force" }, force,
        ` ${running} still running: delete anyway (the process goes on writing its record and points)`) : null,
      el("div", { class: "dialog-buttons" }, cancel, ok));
    const finish = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    force.addEventListener("change", () => { ok.disabled = !force.checked; });
    ok.addEventListener("click", () => finish({ force: live.length > 0 && force.checked }));
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (event) => { event.preventDefault(); finish(null); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// Run *work* on each run, a few at a time; {done: [[run, answer]], failed: [[run, error]]}.
export async function eachRun(runs, work, limit = 4) {
  const queue = [...runs];
  const done = [], failed = [];
  async function worker() {
    while (queue.length) {
      const run = queue.shift();
      try { done.push([run, await work(run)]); } catch (error) { failed.push([run, error]); }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, runs.length) }, worker));
  return { done, failed };
}

export function outcome(verb, { done, failed }) {
  const said = `${verb} ${done.length} run${done.length === 1 ? "" : "s"}`;
  if (!failed.length) return said;
  return [`${said}; ${failed.length} failed:`, ...failed.map(([run, error]) => `${runLabel(run)}: ${error.message}`)].join("\n");
}

// The run page's "Curate" card: name, tags, note, archive, delete. It re-renders itself
// from each answer and tells the page (onChange) so the header follows.
export function curationCard(first, { readOnly, onChange, onDeleted }) {
  const card = el("section", { class: "card curate", id: "curate", dataset: { section: "curate" } });
  let run = first;

  async function act(doing, work) {
    const error = card.querySelector("#curate-error");
    const status = card.querySelector("#curate-status");
    error.textContent = "";
    status.textContent = `${doing}…`;
    for (const control of card.querySelectorAll("button, input, textarea")) control.disabled = true;
    try {
      return await work();
    } catch (failure) {
      error.textContent = failure.message;
      return null;
    } finally {
      status.textContent = "";
      for (const control of card.querySelectorAll("button, input, textarea")) control.disabled = false;
    }
  }

  async function edit(doing, changes, done) {
    const record = await act(doing, () => annotate(run.run_id, changes));
    if (!record) return;
    run = record;
    render(done);
    onChange(record);
  }

  async function remove() {
    const choice = await confirmDelete([run]);
    if (!choice) return;
    const deleted = await act("Deleting", () => deleteRun(run.run_id, choice.force));
    if (deleted) onDeleted(deleted);
  }

  function tagChips() {
    const tags = Object.entries(run.tags || {});
    if (!tags.length) return el("span", { class: "muted" }, "no tags");
    return tags.map(([name, value]) => el("span", { class: "tag", dataset: { tag: name } },
      el("span", { class: "tag-text" }, tagText([name, value])),
      readOnly ? null : el("button", {
        type: "button", class: "tag-remove", title: `remove tag ${name}`, "aria-label": `remove tag ${name}`,
        onclick: () => edit("Removing the tag", { remove_tags: [name] }, `Removed tag ${name}.`),
      }, "×")));
  }

  function editors() {
    const nameBox = el("input", { type: "text", id: "rename-input", value: run.name || "", size: 40, maxlength: 256 });
    const tagBox = el("input", { type: "text", id: "tag-input", placeholder: "tag or name=value", size: 30 });
    const noteBox = el("textarea", { id: "note-input", rows: 4, cols: 80, placeholder: "why this run matters, what went wrong…" });
    noteBox.value = run.note || "";
    const addTag = () => { if (tagBox.value.trim()) edit("Adding the tag", { add_tags: parseTag(tagBox.value) }, "Tag added."); };
    tagBox.addEventListener("keydown", (event) => { if (event.key === "Enter") addTag(); });
    return [
      el("div", { class: "curate-row" }, el("label", { for: "rename-input" }, "name"), nameBox,
        el("button", { type: "button", id: "rename", onclick: () => edit("Renaming", { name: nameBox.value }, "Renamed.") }, "Rename")),
      el("div", { class: "curate-row" }, el("span", { class: "label" }, "tags"),
        el("span", { class: "tags", id: "tags" }, tagChips()), tagBox,
        el("button", { type: "button", id: "add-tag", onclick: addTag }, "Add tag")),
      el("div", { class: "curate-row" }, el("label", { for: "note-input" }, "note"), noteBox,
        el("button", { type: "button", id: "save-note", onclick: () => edit("Saving the note", { note: noteBox.value }, "Note saved.") }, "Save note")),
      el("div", { class: "curate-row" },
        el("button", {
          type: "button", id: "archive-run",
          onclick: () => edit(run.archived ? "Unarchiving" : "Archiving", { archived: !run.archived },
            run.archived ? "Unarchived: the run is listed again." : "Archived: the runs table hides it unless you ask."),
        }, run.archived ? "Unarchive" : "Archive"),
        el("button", { type: "button", id: "delete-run", class: "danger", onclick: remove }, "Delete…")),
    ];
  }

  function viewer() {
    return [
      el("div", { class: "curate-row" }, el("span", { class: "label" }, "tags"), el("span", { class: "tags", id: "tags" }, tagChips())),
      el("div", { class: "curate-row" }, el("span", { class: "label" }, "note"),
        run.note ? el("pre", { class: "note", id: "note" }, run.note) : el("span", { class: "muted" }, "no note")),
      el("p", { class: "muted", id: "read-only-notice" }, "This server is read-only (pacha ui --read-only): edits are off."),
    ];
  }

  function render(notice = "") {
    const extra = run.extra || {};
    const edited = extra.edited_at ? `last edited ${formatTime(extra.edited_at)}${extra.edited_by ? ` by ${extra.edited_by}` : ""}` : "";
    clear(card).append(
      el("h2", {}, "Curate"),
      ...(readOnly ? viewer() : editors()),
      el("p", { class: "muted", id: "curate-status" }, notice),
      el("p", { class: "error", id: "curate-error", role: "alert" }),
      edited ? el("p", { class: "muted hint", id: "edited" }, edited) : null,
    );
  }

  render();
  return card;
}

// The runs table's actions over the selected runs: archive, unarchive, tag, untag, delete.
// onUpdated gets the records the server answered with, onDeleted the ids it deleted.
export function bulkToolbar({ selectedRuns, onUpdated, onDeleted }) {
  const message = el("span", { class: "bulk-message", id: "bulk-message", role: "status" });
  const tagBox = el("input", { type: "text", id: "bulk-tag", placeholder: "tag or name=value", size: 20 });
  const buttons = [];
  const button = (id, label, work, extra = {}) => {
    const node = el("button", { type: "button", id, onclick: work, ...extra }, label);
    buttons.push(node);
    return node;
  };
  const say = (text, failed) => {
    message.textContent = text;
    message.classList.toggle("error", failed);
  };
  async function run(verb, runs, work) {
    if (!runs.length) return null;
    for (const node of buttons) node.disabled = true;
    say(`${verb}…`, false);
    const result = await eachRun(runs, work);
    for (const node of buttons) node.disabled = false;
    say(outcome(verb, result), result.failed.length > 0);
    return result;
  }
  async function edit(verb, changes) {
    const result = await run(verb, selectedRuns(), (target) => annotate(target.run_id, changes));
    if (result) onUpdated(result.done.map(([, record]) => record));
  }
  const tagged = (verb, adding) => () => {
    if (!tagBox.value.trim()) return say("Type a tag first.", true);
    const tag = parseTag(tagBox.value);
    return edit(verb, adding ? { add_tags: tag } : { remove_tags: Object.keys(tag) });
  };
  async function remove() {
    const runs = selectedRuns();
    const choice = runs.length ? await confirmDelete(runs) : null;
    if (!choice) return;
    const result = await run("Deleted", runs, (target) => deleteRun(target.run_id, choice.force));
    if (result) onDeleted(result.done.map(([target]) => target.run_id));
  }
  const element = el("div", { class: "toolbar", id: "bulk-actions", hidden: true },
    el("span", { class: "muted" }, "Selected runs:"),
    button("bulk-archive", "Archive", () => edit("Archived", { archived: true })),
    button("bulk-unarchive", "Unarchive", () => edit("Unarchived", { archived: false })),
    tagBox,
    button("bulk-tag-add", "Tag", tagged("Tagged", true)),
    button("bulk-untag", "Untag", tagged("Untagged", false)),
    button("bulk-delete", "Delete…", remove, { class: "danger" }),
    message);
  return { element, update: (count) => { for (const node of buttons) node.disabled = count === 0; } };
}

// What the run page shows for a run in the trash, with Restore unless read-only.
export function deletedView(runId, message, { readOnly, onRestored }) {
  const error = el("p", { class: "error", id: "restore-error", role: "alert" });
  const restore = el("button", { type: "button", id: "restore-run" }, "Restore");
  restore.addEventListener("click", async () => {
    restore.disabled = true;
    error.textContent = "";
    try {
      onRestored(await restoreRun(runId));
    } catch (failure) {
      error.textContent = failure.message;
      restore.disabled = false;
    }
  });
  return el("section", { class: "card", id: "run-deleted" },
    el("h2", {}, "In the trash"),
    el("p", { id: "deleted-message" }, message),
    el("div", { class: "toolbar" }, readOnly ? null : restore, el("a", { href: "#/trash" }, "Open the trash")),
    error);
}
