// Budgets and teams: every budget with what its window has spent, holds and leaves, and when
// it resets; teams with their members and wallets (top-ups with an idempotency key); balance
// alerts; and the alerts sent to the webhook, with their attempts and status.
import { h, fill, card, field, button, table, toast, dialog, usd, when, errorText, idempotencyKey, confirmAction } from "../ui.js";

export const STYLES = true;

const SCOPES = ["key", "user", "team", "end_user"];
const WINDOWS = ["daily", "weekly", "monthly", "lifetime"];

export async function render(root, { api }) {
  const budgetBox = h("div", {});
  const teamBox = h("div", {});
  const alertBox = h("div", {});
  const sentBox = h("div", {});
  fill(root, h("h1", {}, "Budgets & teams"),
    card("Budgets", h("p", { class: "muted small" },
      "A request is admitted only if its worst case fits every budget on its path; a refusal is 402 budget_exceeded."),
    budgetBox, budgetForm()),
    h("div", { class: "grid two" }, card("Teams", teamBox, teamForm()), card("Balance alerts", alertBox, alertForm())),
    card("Alerts sent", sentBox));

  function percent(state, limit) {
    if (!state) return "each end user";
    const spent = Number(state.spent_usd), total = Number(limit);
    return total > 0 ? `${Math.min(100, Math.round((spent / total) * 100))} %` : "—";
  }

  async function drawBudgets() {
    const { data } = await api.get("/admin/budgets");
    fill(budgetBox, table({
      columns: [
        { label: "Budget", value: (b) => h("span", { "data-budget": b.id }, b.id) },
        { label: "Applies to", value: (b) => `${b.scope} ${b.subject}${b.scope === "end_user" ? ` · ${b.end_user}` : ""}` },
        { label: "Window", value: (b) => b.window },
        { label: "Limit", value: (b) => usd(b.limit_usd), class: "num" },
        { label: "Spent", value: (b) => (b.state ? usd(b.state.spent_usd) : "—"), class: "num" },
        { label: "Held", value: (b) => (b.state ? usd(b.state.held_usd) : "—"), class: "num" },
        { label: "Left", value: (b) => (b.state ? usd(b.state.remaining_usd) : "—"), class: "num" },
        { label: "Used", value: (b) => percent(b.state, b.limit_usd) },
        { label: "Resets", value: (b) => (b.state && b.state.resets_at ? when(b.state.resets_at) : "never") },
        { label: "Alerts at", value: (b) => (b.alert_percents.length ? b.alert_percents.map((p) => `${p} %`).join(", ") : "—") },
        { label: "", class: "actions", value: (b) => button("Delete", () => remove(`/admin/budgets/${encodeURIComponent(b.id)}`, `budget ${b.id}`),
          { class: "danger", "aria-label": `Delete budget ${b.id}` }) },
      ],
      rows: data,
      empty: "No budget yet: only balances and keys' spend caps limit spending.",
    }));
  }

  function budgetForm() {
    const scope = h("select", { "aria-label": "Budget scope" }, SCOPES.map((s) => h("option", { value: s }, s)));
    const subject = h("input", { type: "text", required: true, placeholder: "a user, team or key id" });
    const endUser = h("input", { type: "text", placeholder: "* for each end user" });
    const windowKind = h("select", { "aria-label": "Budget window" }, WINDOWS.map((w) => h("option", { value: w }, w)));
    const limit = h("input", { type: "text", inputmode: "decimal", placeholder: "100.00", required: true });
    const alerts = h("input", { type: "text", placeholder: "50, 80, 100" });
    const save = button("Create budget", async () => {
      const body = { scope: scope.value, subject: subject.value.trim(), window: windowKind.value, limit_usd: limit.value.trim(),
        alert_percents: alerts.value.split(",").map((p) => p.trim()).filter(Boolean).map(Number) };
      if (scope.value === "end_user") body.end_user = endUser.value.trim() || "*";
      try {
        const made = await api.post("/admin/budgets", body);
        toast(`Budget ${made.id} created.`);
        await drawBudgets();
      } catch (err) {
        toast(errorText(err), "error");
      }
    }, { class: "primary" });
    return h("fieldset", {}, h("legend", {}, "A new budget"),
      h("div", { class: "row wrap" }, field("Scope", scope), field("Subject", subject), field("End user (end_user budgets)", endUser)),
      h("div", { class: "row wrap" }, field("Window", windowKind), field("Limit (USD)", limit), field("Alert at percents", alerts)),
      save);
  }

  async function drawTeams() {
    const { data } = await api.get("/admin/teams");
    fill(teamBox, table({
      columns: [
        { label: "Team", value: (t) => h("span", { "data-team": t.id }, t.name ? `${t.name} (${t.id})` : t.id) },
        { label: "Members", value: (t) => t.members.join(", ") || "—" },
        { label: "Pays", value: (t) => (t.wallet ? h("span", { class: "badge ok" }, "wallet") : "each member") },
        { label: "Wallet", value: (t) => h("span", { "data-wallet": t.id }, usd(t.wallet_balance_usd)), class: "num" },
        { label: "", class: "actions", value: (t) => button("Top up", () => topUp(t), { "aria-label": `Top up team ${t.id}` }) },
      ],
      rows: data,
      empty: "No team yet.",
    }));
  }

  async function topUp(team) {
    const amount = h("input", { type: "text", inputmode: "decimal", value: "10.00", required: true });
    const key = h("input", { type: "text", value: idempotencyKey(), class: "mono" });
    const ok = await dialog({ title: `Top up the wallet of ${team.id}`,
      body: [field("Amount (USD)", amount), field("Idempotency key", key, "The same key again is applied once.")],
      actions: [{ label: "Cancel", value: false }, { label: "Top up", kind: "primary", value: true }] });
    if (!ok) return;
    try {
      const answer = await api.post(`/admin/teams/${encodeURIComponent(team.id)}/topup`,
        { amount_usd: amount.value.trim(), idempotency_key: key.value.trim() || undefined });
      toast(`Wallet of ${team.id}: ${usd(answer.balance_usd)}.`);
      await drawTeams();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  function teamForm() {
    const id = h("input", { type: "text", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._@-]*" });
    const members = h("input", { type: "text", placeholder: "ann, ben" });
    const wallet = h("input", { type: "checkbox" });
    const save = button("Create team", async () => {
      try {
        await api.post("/admin/teams", { id: id.value.trim(), wallet: wallet.checked,
          members: members.value.split(",").map((m) => m.trim()).filter(Boolean) });
        toast(`Team ${id.value.trim()} created.`);
        await drawTeams();
      } catch (err) {
        toast(errorText(err), "error");
      }
    }, { class: "primary" });
    return h("fieldset", {}, h("legend", {}, "A new team"),
      field("Team id", id), field("Members (user ids, comma-separated)", members),
      h("label", { class: "check" }, wallet, " The team's wallet pays for its members"), save);
  }

  async function drawAlerts() {
    const { data } = await api.get("/admin/balance-alerts");
    fill(alertBox, table({
      columns: [
        { label: "Account", value: (a) => a.account },
        { label: "Below", value: (a) => usd(a.below_usd), class: "num" },
        { label: "", class: "actions", value: (a) => button("Delete", () => remove(`/admin/balance-alerts/${encodeURIComponent(a.id)}`, `alert ${a.id}`),
          { class: "danger", "aria-label": `Delete balance alert ${a.id}` }) },
      ],
      rows: data,
      empty: "No balance alert.",
    }));
  }

  function alertForm() {
    const account = h("input", { type: "text", required: true, placeholder: "ann or team:eng" });
    const below = h("input", { type: "text", inputmode: "decimal", placeholder: "5.00", required: true });
    const save = button("Add alert", async () => {
      try {
        await api.post("/admin/balance-alerts", { account: account.value.trim(), below_usd: below.value.trim() });
        await drawAlerts();
      } catch (err) {
        toast(errorText(err), "error");
      }
    });
    return h("fieldset", {}, h("legend", {}, "Warn when a balance goes below"), field("Account", account), field("Amount (USD)", below), save);
  }

  async function drawSent() {
    const answer = await api.get("/admin/alerts?limit=50");
    fill(sentBox,
      answer.webhook_configured ? null : h("p", { class: "muted small" }, "No webhook URL is configured: alerts are recorded here only."),
      table({
        columns: [
          { label: "Alert", value: (d) => h("span", { class: "mono small" }, d.key) },
          { label: "Event", value: (d) => d.event },
          { label: "Status", value: (d) => h("span", { class: `badge ${d.status === "delivered" ? "ok" : d.status === "failed" ? "bad" : "warn"}` }, d.status) },
          { label: "Attempts", value: (d) => String(d.attempts), class: "num" },
          { label: "Last error", value: (d) => d.last_error || "—" },
          { label: "When", value: (d) => when(d.created_at) },
        ],
        rows: answer.data,
        empty: "No alert has fired.",
      }));
  }

  async function remove(path, what) {
    if (!(await confirmAction(`Delete ${what}?`, "The change is kept in the history and can be rolled back.", "Delete", "danger"))) return;
    try {
      await api.del(path);
      toast(`Deleted ${what}.`);
      await Promise.all([drawBudgets(), drawAlerts()]);
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  try {
    await Promise.all([drawBudgets(), drawTeams(), drawAlerts(), drawSent()]);
  } catch (err) {
    fill(budgetBox, h("p", { class: "error-box", role: "alert" }, errorText(err)));
  }
}
