// The trash: every deleted run, most recently deleted first, each with Restore (unless the
// server is read-only). A restored run leaves the list at once and gets a link to its page.

import { api, el, clear, shortId, statusText, formatTime, getSession } from "./util.js";
import { restoreRun } from "./curate.js";

export function showTrash(main) {
  let stopped = false;
  const message = el("p", { class: "muted", id: "trash-message", role: "status" });
  const table = el("table", { class: "grid", id: "trash-table" });
  main.append(
    el("h1", {}, "Trash"),
    el("p", { class: "muted" }, "Deleted runs keep every file here until `pacha gc --trash-older-than 7d` empties the trash for good."),
    message,
    el("div", { class: "table-wrap" }, table),
  );

  function row(entry, readOnly) {
    const record = entry.record || {};
    const name = record.name || shortId(entry.run_id);
    const restore = el("button", { type: "button", class: "restore", dataset: { runId: entry.run_id } }, "Restore");
    const tr = el("tr", { dataset: { runId: entry.run_id } },
      el("td", { class: "name" }, el("a", { href: `#/run/${entry.run_id}` }, name)),
      el("td", { class: "mono" }, shortId(entry.run_id)),
      el("td", {}, record.status ? statusText(record) : ""),
      el("td", {}, formatTime(entry.deleted_at)),
      el("td", {}, entry.deleted_by ?? ""),
      el("td", {}, entry.state),
      el("td", { class: "num" }, entry.files),
      el("td", {}, readOnly ? null : restore));
    restore.addEventListener("click", async () => {
      restore.disabled = true;
      message.classList.remove("error");
      try {
        const restored = await restoreRun(entry.run_id);
        tr.remove();
        clear(message).append("Restored ", el("a", { href: `#/run/${restored.run_id}` }, restored.name || shortId(restored.run_id)), ".");
        if (!table.querySelector("tbody tr")) table.append(el("caption", {}, "The trash is empty."));
      } catch (error) {
        message.classList.add("error");
        message.textContent = `Could not restore ${name}: ${error.message}`;
        restore.disabled = false;
      }
    });
    return tr;
  }

  (async () => {
    let entries, session;
    try {
      [entries, session] = await Promise.all([api("/api/trash"), getSession()]);
    } catch (error) {
      if (!stopped) clear(main).append(el("p", { class: "error" }, `Could not list the trash: ${error.message}`));
      return;
    }
    if (stopped) return;
    const head = ["name", "id", "status", "deleted", "by", "state", "files", ""].map((h) => el("th", {}, h));
    clear(table).append(el("thead", {}, el("tr", {}, ...head)), el("tbody", {}, ...entries.map((entry) => row(entry, session.read_only))));
    if (!entries.length) table.append(el("caption", {}, "The trash is empty."));
  })();
  return () => { stopped = true; };
}
