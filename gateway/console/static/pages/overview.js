// Overview: the last hour minute by minute, the busiest models, the cache, discovery,
// providers cooling down and the ledger's health. Refreshed every 15 seconds.
import { h, fill, card, table, button, toast, usd, number, when, errorText } from "../ui.js";
import { lineChart, barChart } from "../charts.js";

const REFRESH_MS = 15000;

function minuteLabel(seconds) {
  const d = new Date(seconds * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function spendFormat(value) {
  if (value === 0) return "$0";
  return value >= 1 ? `$${value.toFixed(2)}` : `$${value.toPrecision(2)}`;
}

export async function render(root, { api }) {
  const body = h("div", { class: "stack" });
  fill(root, h("div", { class: "spread" }, h("h1", {}, "Overview"),
    button("Refresh", () => load(), { "aria-label": "Refresh the overview" })), body);

  async function load() {
    let activity, health, cache, sync;
    try {
      [activity, health, cache, sync] = await Promise.all([
        api.get("/admin/activity"),
        fetch("/health", { credentials: "same-origin" }).then((r) => r.json()),
        api.get("/admin/cache/stats"),
        api.get("/admin/sync"),
      ]);
    } catch (err) {
      fill(body, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    fill(body, totals(activity), charts(activity),
      h("div", { class: "grid" }, topModels(activity), ledgerCard(health), cacheCard(cache), providersCard(activity, health), syncCard(sync)));
  }

  function totals(activity) {
    const sum = (k) => activity.minutes.reduce((n, m) => n + m[k], 0);
    const spentNano = activity.minutes.reduce((n, m) => n + BigInt(m.spend_nano), 0n);
    const spent = `${spentNano / 1000000000n}.${String(spentNano % 1000000000n).padStart(9, "0")}`;
    const stat = (label, value, id) => h("div", { class: "card" },
      h("div", { class: "muted small" }, label), h("div", { class: "stat", "data-stat": id }, value));
    return h("div", { class: "grid" },
      stat(`Requests, last ${activity.span_minutes} min`, number(sum("requests")), "requests"),
      stat("Errors (4xx and 5xx)", number(sum("errors")), "errors"),
      stat("Spend", usd(spent), "spend"));
  }

  function charts(activity) {
    const labels = activity.minutes.map((m) => minuteLabel(m.minute));
    return h("div", { class: "grid two" },
      card(null, lineChart({
        title: "Requests and errors per minute",
        labels,
        series: [
          { name: "requests", values: activity.minutes.map((m) => m.requests) },
          { name: "errors", values: activity.minutes.map((m) => m.errors) },
        ],
        format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)),
      })),
      card(null, lineChart({
        title: "Spend per minute (USD)",
        labels,
        series: [{ name: "spend", values: activity.minutes.map((m) => Number(m.spend_usd)) }],
        format: spendFormat,
      })));
  }

  function topModels(activity) {
    const items = activity.models.slice(0, 8).map((m) => ({ label: m.name, value: m.requests, text: `${m.requests} · ${usd(m.spend_usd)}` }));
    return card("Top models, last hour", barChart({ title: "Requests by model", items }));
  }

  function ledgerCard(health) {
    const ledger = health.ledger || {};
    const ok = ledger.writing;
    return card("Ledger",
      h("p", {}, h("span", { class: `badge ${ok ? "ok" : "bad"}` }, ok ? "writing" : "not writing"),
        " ", h("span", { class: `badge ${health.status === "ok" ? "ok" : "warn"}` }, `gateway ${health.status}`)),
      table({
        columns: [{ label: "Figure", value: (r) => r[0] }, { label: "Value", value: (r) => r[1], class: "num" }],
        rows: [
          ["rows written", number(ledger.rows)],
          ["rows queued", number(ledger.queued)],
          ["failed batches", number(ledger.failed_batches)],
          ["writer restarts", number(ledger.writer_restarts)],
          ["WAL bytes", number(ledger.wal_bytes)],
        ],
      }),
      ledger.last_error ? h("p", { class: "error-box" }, ledger.last_error) : null);
  }

  function cacheCard(cache) {
    const refresh = button("Refresh the cache now", async () => {
      refresh.disabled = true;
      try {
        await api.post("/admin/cache/refresh");
        toast("The configuration cache was refreshed.");
        await load();
      } catch (err) {
        toast(errorText(err), "error");
        refresh.disabled = false;
      }
    });
    return card("Configuration cache",
      table({
        columns: [{ label: "Figure", value: (r) => r[0] }, { label: "Value", value: (r) => r[1], class: "num" }],
        rows: [
          ["source", cache.source],
          ["models (active)", `${cache.model_configs_count} (${cache.active_models_count})`],
          ["last refresh", when(cache.last_refresh)],
          ["hits / misses", `${number(cache.hits)} / ${number(cache.misses)}`],
          ["refreshes (failed)", `${number(cache.refreshes)} (${number(cache.refresh_failures)})`],
          ["scheduled prices pending", number(cache.scheduled_prices_pending)],
        ],
      }),
      cache.last_error ? h("p", { class: "error-box" }, cache.last_error) : null,
      h("div", { class: "row end" }, refresh));
  }

  function providersCard(activity, health) {
    const cooling = activity.cooling_down || [];
    return card("Providers",
      cooling.length
        ? h("p", {}, "Cooling down: ", cooling.map((c) => h("span", { class: "badge warn" }, `${c.name} (${Math.ceil(c.seconds_left)} s)`)))
        : h("p", { class: "muted" }, "No provider is cooling down."),
      table({
        columns: [
          { label: "Provider", value: (p) => p.name },
          { label: "Requests", value: (p) => number(p.requests), class: "num" },
          { label: "Errors", value: (p) => number(p.errors), class: "num" },
          { label: "Spend", value: (p) => usd(p.spend_usd), class: "num" },
        ],
        rows: activity.providers,
        empty: "No request in the last hour.",
      }));
  }

  function syncCard(sync) {
    const rows = Object.entries(sync.providers || {}).map(([name, s]) => ({ name, ...s }));
    return card("Model discovery",
      h("p", { class: "muted small" }, sync.running ? "Running now." : `Next run: ${when(sync.next_run)}`),
      table({
        columns: [
          { label: "Provider", value: (r) => r.name },
          { label: "Status", value: (r) => r.status || "—" },
          { label: "Last run", value: (r) => when(r.last_run) },
          { label: "Found", value: (r) => number(r.discovered), class: "num" },
        ],
        rows,
        empty: "Discovery has not run yet.",
      }));
  }

  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
