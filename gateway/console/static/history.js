// The history of one kind of change (or of one entity), each entry with its diff and a rollback.
import { h, fill, card, table, button, toast, when, jsonDiff, errorText, confirmAction } from "./ui.js";

/**
 * historyCard({api, title, entity, entityId, onRolledBack}): a card that loads
 * GET /admin/history and offers Diff and Roll back on every entry.
 * Returns {element, reload}.
 */
export function historyCard({ api, title = "History", entity, entityId, limit = 20, onRolledBack }) {
  const body = h("div", {});
  const element = card(title, body);
  const open = new Set();

  async function reload() {
    let entries;
    try {
      entries = (await api.get("/admin/history", { entity, entity_id: entityId, limit })).data;
    } catch (err) {
      fill(body, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    fill(body, table({
      caption: null,
      columns: [
        { label: "When", value: (e) => when(e.at) },
        { label: "Who", value: (e) => e.actor },
        { label: "What", value: (e) => `${e.action} ${e.entity_id}` },
        { label: "Why", value: (e) => e.reason || "—" },
        { label: "", class: "actions", value: (e) => actions(e) },
      ],
      rows: entries,
      empty: "No change recorded yet.",
      rowAttrs: (e) => ({ "data-history-id": e.id }),
    }));
    // The open diffs, each under its own row.
    for (const e of entries) {
      if (!open.has(e.id)) continue;
      const row = body.querySelector(`tr[data-history-id="${e.id}"]`);
      row.after(h("tr", { class: "diff-row" }, h("td", { colspan: 5 }, jsonDiff(e.old, e.new))));
    }
  }

  function actions(entry) {
    const diff = button(open.has(entry.id) ? "Hide diff" : "Diff", () => {
      if (open.has(entry.id)) open.delete(entry.id); else open.add(entry.id);
      reload();
    }, { "aria-label": `Diff of change ${entry.id}`, "aria-expanded": open.has(entry.id) ? "true" : "false" });
    const undo = button("Roll back", async () => {
      const sure = await confirmAction("Roll back this change?",
        `Change ${entry.id} (${entry.action} ${entry.entity_id} by ${entry.actor}) will be undone: what it replaced is restored, and the rollback is recorded in the history.`,
        "Roll back", "danger");
      if (!sure) return;
      try {
        await api.post(`/admin/history/${entry.id}/rollback`, undefined, { query: { reason: "from the console" } });
        toast(`Change ${entry.id} rolled back.`);
        await reload();
        if (onRolledBack) await onRolledBack(entry);
      } catch (err) {
        toast(errorText(err), "error");
      }
    }, { class: "danger", "aria-label": `Roll back change ${entry.id}` });
    return [diff, " ", undo];
  }

  return { element, reload };
}
