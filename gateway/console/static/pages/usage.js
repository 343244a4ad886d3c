// Usage: spend per day, model, user and provider over a range, as charts (from /admin/usage),
// and the ledger page by page, with its CSV export.
import { h, fill, card, field, button, table, usd, number, when, errorText } from "../ui.js";
import { lineChart, barChart } from "../charts.js";

export const STYLES = true;

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** Sum decimal USD texts exactly, through nano-USD integers. */
function sumNano(rows) {
  return rows.reduce((total, r) => total + BigInt(r.cost_nano), 0n);
}

function nanoText(nano) {
  const negative = nano < 0n;
  const n = negative ? -nano : nano;
  return `${negative ? "-" : ""}${n / 1000000000n}.${String(n % 1000000000n).padStart(9, "0")}`;
}

export async function render(root, { api }) {
  const today = new Date();
  const from = h("input", { type: "date", value: isoDay(new Date(today.getTime() - 29 * 86400000)) });
  const to = h("input", { type: "date", value: isoDay(today) });
  const charts = h("div", { class: "stack" });
  const ledgerBox = h("div", {});
  const userFilter = h("input", { type: "text", placeholder: "every user" });
  const kindFilter = h("select", {}, h("option", { value: "" }, "every kind"),
    ["charge", "topup", "adjust"].map((k) => h("option", { value: k }, k)));
  const size = h("select", {}, [10, 25, 100, 500].map((n) => h("option", { value: n, selected: n === 25 }, String(n))));
  const exportLink = h("a", { class: "button", download: "", id: "ledger-export" }, "Export CSV");
  let cursors = [null]; // the cursor each page starts after; the last is the current page's

  fill(root, h("h1", {}, "Usage"),
    card(null, h("div", { class: "row range" }, field("From (UTC day)", from), field("To (UTC day, included)", to),
      button("Show", () => { loadUsage(); resetLedger(); }, { class: "primary" }))),
    charts,
    card("Ledger", h("div", { class: "row range" }, field("User", userFilter), field("Kind", kindFilter), field("Rows per page", size), exportLink),
      ledgerBox));

  function range() {
    const since = from.value ? `${from.value}T00:00:00Z` : undefined;
    const until = to.value ? new Date(Date.parse(`${to.value}T00:00:00Z`) + 86400000).toISOString() : undefined;
    return { from: since, to: until };
  }

  async function loadUsage() {
    let byDay, byModel, byUser, byProvider;
    try {
      [byDay, byModel, byUser, byProvider] = await Promise.all(["day", "model", "user", "provider"]
        .map((group) => api.get("/admin/usage", { group_by: group, ...range() }).then((r) => r.data)));
    } catch (err) {
      fill(charts, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    const total = sumNano(byModel);
    const uncollected = byModel.reduce((t, r) => t + BigInt(r.uncollected_nano), 0n);
    const requests = byModel.reduce((t, r) => t + r.requests, 0);
    const days = [];
    const { from: since, to: until } = range();
    for (let t = Date.parse(since); t < Date.parse(until); t += 86400000) days.push(isoDay(new Date(t)));
    const spendByDay = Object.fromEntries(byDay.map((r) => [r.day, Number(r.cost_usd)]));
    const stat = (label, value, id) => h("div", { class: "card" }, h("div", { class: "muted small" }, label), h("div", { class: "stat", "data-usage-total": id }, value));
    const bars = (rows, key) => rows.slice().sort((a, b) => (BigInt(b.cost_nano) > BigInt(a.cost_nano) ? 1 : -1))
      .slice(0, 12).map((r) => ({ label: r[key] || "(none)", value: Number(r.cost_usd), text: usd(r.cost_usd) }));
    fill(charts,
      h("div", { class: "grid" }, stat("Requests", number(requests), "requests"), stat("Spend", usd(nanoText(total)), "spend"),
        stat("Uncollected (beyond holds)", usd(nanoText(uncollected)), "uncollected")),
      card(null, lineChart({ title: "Spend per day (USD)", labels: days.map((d) => d.slice(5)), series: [{ name: "spend", values: days.map((d) => spendByDay[d] || 0) }],
        format: (v) => (v === 0 ? "$0" : v >= 1 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`), width: 1200, height: 220 })),
      h("div", { class: "grid" },
        card(null, barChart({ title: "Spend per model", items: bars(byModel, "model") })),
        card(null, barChart({ title: "Spend per user", items: bars(byUser, "user") })),
        card(null, barChart({ title: "Spend per provider", items: bars(byProvider, "provider") }))),
      card("By model", table({
        columns: [
          { label: "Model", value: (r) => r.model },
          { label: "Requests", value: (r) => number(r.requests), class: "num" },
          { label: "Prompt tokens", value: (r) => number(r.prompt_tokens), class: "num" },
          { label: "Completion tokens", value: (r) => number(r.completion_tokens), class: "num" },
          { label: "Spend", value: (r) => h("span", { "data-spend": r.model }, usd(r.cost_usd)), class: "num" },
        ],
        rows: byModel,
        empty: "No request in this range.",
      })));
  }

  function ledgerQuery() {
    return { user: userFilter.value.trim(), kind: kindFilter.value };
  }

  async function loadLedger() {
    const after = cursors[cursors.length - 1];
    let page;
    try {
      page = await api.get("/admin/ledger", { ...ledgerQuery(), limit: size.value, after });
    } catch (err) {
      fill(ledgerBox, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    const params = new URLSearchParams(Object.entries({ ...ledgerQuery(), ...range() }).filter(([, v]) => v));
    exportLink.setAttribute("href", `/admin/ledger/export?${params}`);
    const full = page.data.length === Number(size.value);
    const previous = button("Previous", () => { cursors.pop(); loadLedger(); }, { disabled: cursors.length === 1 });
    const next = button("Next", () => { cursors.push(page.next); loadLedger(); }, { disabled: !full });
    fill(ledgerBox,
      table({
        columns: [
          { label: "When", value: (r) => when(r.created_at) },
          { label: "User", value: (r) => r.user_id },
          { label: "Kind", value: (r) => r.kind },
          { label: "Model", value: (r) => r.model_id || "—" },
          { label: "Tokens in/out", value: (r) => (r.kind === "charge" ? `${number(r.prompt_tokens)} / ${number(r.completion_tokens)}` : "—"), class: "num" },
          { label: "Amount", value: (r) => usd(r.amount_usd), class: "num" },
          { label: "Reason or request", value: (r) => h("span", { class: "small" }, r.reason || r.request_id) },
        ],
        rows: page.data,
        empty: "No ledger row.",
        rowAttrs: (r) => ({ "data-ledger-row": r.request_id }),
      }),
      h("div", { class: "spread" }, h("span", { class: "muted small", id: "ledger-page" }, `Page ${cursors.length}`), h("div", { class: "row" }, previous, next)));
  }

  function resetLedger() {
    cursors = [null];
    loadLedger();
  }

  for (const el of [userFilter, kindFilter, size]) el.addEventListener("change", resetLedger);
  await Promise.all([loadUsage(), loadLedger()]);
}
