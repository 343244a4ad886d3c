// Models: a searchable, filterable table; create, edit, deactivate; capabilities; prices with
// their history and scheduled changes; bulk import with its dry-run diff first; export; and
// each model's history with diffs and rollback.
import { h, fill, card, field, button, table, toast, dialog, usd, number, when, errorText, searchBox, confirmAction } from "../ui.js";
import { historyCard } from "../history.js";

export const STYLES = true;

const CAPABILITIES = ["vision", "tools", "json_mode", "reasoning", "research"];
const EDITABLE = [
  ["provider", "Provider", "text"],
  ["upstream_model", "Upstream model name", "text"],
  ["context_window_size", "Context window (tokens)", "number"],
  ["max_output_tokens", "Max output tokens", "number"],
  ["fallbacks", "Fallbacks (model ids, comma-separated)", "list"],
  ["fallback_priority", "Fallback priority", "number"],
  ["note", "Note", "text"],
];

export async function render(root, { api, route }) {
  let models = [];
  let profiles = {};
  const filters = { text: route.query.get("q") || "", provider: "", status: "", capability: "" };
  const listBox = h("div", {});
  const detail = h("div", { class: "stack" });
  const providerSelect = h("select", { "aria-label": "Filter by provider" });
  const statusSelect = h("select", { "aria-label": "Filter by status" },
    h("option", { value: "" }, "active and inactive"), h("option", { value: "active" }, "active"), h("option", { value: "inactive" }, "inactive"));
  const capabilitySelect = h("select", { "aria-label": "Filter by capability" },
    h("option", { value: "" }, "any capability"), CAPABILITIES.map((c) => h("option", { value: c }, c)));
  for (const [select, key] of [[providerSelect, "provider"], [statusSelect, "status"], [capabilitySelect, "capability"]]) {
    select.addEventListener("change", () => { filters[key] = select.value; drawList(); });
  }
  const count = h("span", { class: "muted small", id: "model-count" });

  fill(root,
    h("div", { class: "spread" }, h("h1", {}, "Models"),
      h("div", { class: "row" }, button("New model", createModel, { class: "primary" }),
        button("Import…", importModels), button("Export", exportModels))),
    route.rest ? detail : null,
    card(null,
      h("div", { class: "row filters" }, searchBox("Search models", (text) => { filters.text = text.toLowerCase(); drawList(); }, filters.text),
        providerSelect, statusSelect, capabilitySelect, count),
      listBox));

  function visible() {
    return models.filter((m) =>
      (!filters.text || `${m.model_id} ${m.upstream_model} ${m.note}`.toLowerCase().includes(filters.text))
      && (!filters.provider || m.provider === filters.provider)
      && (!filters.status || (filters.status === "active") === m.is_active)
      && (!filters.capability || (profiles[m.model_id] && profiles[m.model_id].capabilities[filters.capability])));
  }

  function drawList() {
    const rows = visible();
    count.textContent = `${rows.length} of ${models.length}`;
    fill(listBox, table({
      columns: [
        { label: "Model", value: (m) => h("a", { href: `#models/${encodeURIComponent(m.model_id)}` }, m.model_id) },
        { label: "Provider", value: (m) => m.provider },
        { label: "Input $/M", value: (m) => usd(m.input_price_per_million), class: "num" },
        { label: "Output $/M", value: (m) => usd(m.output_price_per_million), class: "num" },
        { label: "Context", value: (m) => number(m.context_window_size), class: "num" },
        { label: "Mode", value: (m) => m.mode },
        { label: "Status", value: (m) => m.is_active ? h("span", { class: "badge ok" }, "active") : h("span", { class: "badge" }, "inactive") },
      ],
      rows,
      empty: "No model matches.",
      rowAttrs: (m) => ({ "data-model": m.model_id, class: m.model_id === route.rest ? "selected" : "" }),
    }));
  }

  async function drawDetail() {
    const id = route.rest;
    let model, prices;
    try {
      [model, prices] = await Promise.all([
        api.get(`/admin/models/${encodeURIComponent(id)}`),
        api.get(`/admin/models/${encodeURIComponent(id)}/prices`),
      ]);
    } catch (err) {
      fill(detail, card(id, h("p", { class: "error-box", role: "alert" }, errorText(err))));
      return;
    }
    const history = historyCard({ api, title: `History of ${id}`, entity: "model", entityId: id, limit: 20, onRolledBack: reloadAll });
    fill(detail, h("div", { class: "grid two" }, editCard(model), pricesCard(model, prices.data)), capabilitiesCard(model), history.element);
    await history.reload();
  }

  function editCard(model) {
    const inputs = {};
    const fields = EDITABLE.map(([key, label, kind]) => {
      const value = kind === "list" ? model[key].join(", ") : model[key];
      inputs[key] = h("input", { type: kind === "number" ? "number" : "text", value, min: kind === "number" ? 0 : null });
      return field(label, inputs[key]);
    });
    const reason = h("input", { type: "text", maxlength: 500 });
    const save = button("Save changes", async () => {
      const patch = {};
      for (const [key, , kind] of EDITABLE) {
        const raw = inputs[key].value.trim();
        const value = kind === "number" ? Number(raw) : kind === "list" ? raw.split(",").map((s) => s.trim()).filter(Boolean) : raw;
        if (JSON.stringify(value) !== JSON.stringify(model[key])) patch[key] = value;
      }
      if (!Object.keys(patch).length) { toast("Nothing changed."); return; }
      try {
        await api.patch(`/admin/models/${encodeURIComponent(model.model_id)}`, patch, { query: { reason: reason.value.trim() } });
        toast(`${model.model_id} was saved.`);
        await reloadAll();
      } catch (err) {
        toast(errorText(err), "error");
      }
    }, { class: "primary" });
    const toggle = model.is_active
      ? button("Deactivate", async () => {
        if (!(await confirmAction("Deactivate this model?", `${model.model_id} stops being served; its history and prices are kept, and it can be activated again.`, "Deactivate", "danger"))) return;
        try {
          await api.del(`/admin/models/${encodeURIComponent(model.model_id)}`, { query: { reason: reason.value.trim() || "deactivated from the console" } });
          toast(`${model.model_id} is inactive.`);
          await reloadAll();
        } catch (err) { toast(errorText(err), "error"); }
      }, { class: "danger" })
      : button("Activate", async () => {
        try {
          await api.patch(`/admin/models/${encodeURIComponent(model.model_id)}`, { is_active: true }, { query: { reason: reason.value.trim() || "activated from the console" } });
          toast(`${model.model_id} is active.`);
          await reloadAll();
        } catch (err) { toast(errorText(err), "error"); }
      });
    return card(model.model_id,
      h("p", {}, model.is_active ? h("span", { class: "badge ok" }, "active") : h("span", { class: "badge" }, "inactive"),
        h("span", { class: "muted small" }, ` ${model.mode} · row ${model.id} · created ${when(model.created_at)}`)),
      fields, field("Reason for the change", reason), h("div", { class: "row" }, save, toggle));
  }

  function pricesCard(model, points) {
    const price = (label, value) => h("input", { type: "text", inputmode: "decimal", value: value ?? "", placeholder: "unchanged" });
    const input = price("Input", "");
    const output = price("Output", "");
    const cached = price("Cached input", "");
    const write = price("Cache write", "");
    const from = h("input", { type: "datetime-local" });
    const reason = h("input", { type: "text", maxlength: 500 });
    const add = button("Add price", async () => {
      const body = {};
      if (input.value.trim()) body.input_price_per_million = input.value.trim();
      if (output.value.trim()) body.output_price_per_million = output.value.trim();
      if (cached.value.trim()) body.cached_input_price_per_million = cached.value.trim();
      if (write.value.trim()) body.cache_write_price_per_million = write.value.trim();
      if (from.value) body.effective_from = new Date(from.value).toISOString();
      if (reason.value.trim()) body.reason = reason.value.trim();
      try {
        await api.post(`/admin/models/${encodeURIComponent(model.model_id)}/prices`, body);
        toast(from.value ? `A price change for ${model.model_id} is scheduled.` : `${model.model_id} is billed at its new price from now.`);
        await reloadAll();
      } catch (err) {
        toast(errorText(err), "error");
      }
    }, { class: "primary" });
    const now = Date.now();
    return card("Prices (USD per million tokens)",
      table({
        columns: [
          { label: "From", value: (p) => when(p.effective_from) },
          { label: "Input", value: (p) => usd(p.input_price_per_million), class: "num" },
          { label: "Output", value: (p) => usd(p.output_price_per_million), class: "num" },
          { label: "Cached", value: (p) => usd(p.cached_input_price_per_million), class: "num" },
          { label: "State", value: (p) => p.in_force ? h("span", { class: "badge ok" }, "in force")
            : new Date(p.effective_from).getTime() > now ? h("span", { class: "badge warn" }, "scheduled") : h("span", { class: "badge" }, "past") },
          { label: "Why", value: (p) => `${p.reason || "—"} (${p.actor || "—"})`, class: "small" },
        ],
        rows: [...points].reverse(),
        rowAttrs: (p) => ({ "data-price-point": p.id || "" }),
      }),
      h("fieldset", {}, h("legend", {}, "A new price"),
        h("div", { class: "pair" }, field("Input price per million", input), field("Output price per million", output),
          field("Cached input price per million", cached), field("Cache write price per million", write)),
        field("Effective from", from, "Empty: at once. A later time schedules it; never in the past."),
        field("Reason for the price", reason),
        add));
  }

  function capabilitiesCard(model) {
    const profile = profiles[model.model_id];
    if (!profile) {
      return card("Capabilities", h("p", { class: "muted" }, "This model has no router profile, so the auto-router does not choose it. Its capabilities live in the profile (Router page)."));
    }
    const boxes = CAPABILITIES.map((name) => {
      const box = h("input", { type: "checkbox", checked: profile.capabilities[name] });
      box.addEventListener("change", async () => {
        try {
          const saved = await api.put(`/admin/router/profiles/${encodeURIComponent(model.model_id)}`, { capabilities: { [name]: box.checked } },
            { query: { reason: `${name} capability from the console` } });
          profiles[model.model_id] = saved.profile;
          toast(`${model.model_id}: ${name} ${box.checked ? "on" : "off"}.`);
        } catch (err) {
          box.checked = !box.checked;
          toast(errorText(err), "error");
        }
      });
      return h("label", { class: "check" }, box, ` ${name}`);
    });
    return card("Capabilities", h("p", { class: "muted small" }, "What the auto-router may route to this model (its profile)."), h("div", { class: "row" }, boxes));
  }

  async function createModel() {
    const inputs = {
      model_id: h("input", { type: "text", required: true }),
      provider: h("select", {}, [...new Set(models.map((m) => m.provider))].sort().map((p) => h("option", { value: p }, p))),
      input_price_per_million: h("input", { type: "text", inputmode: "decimal", value: "0" }),
      output_price_per_million: h("input", { type: "text", inputmode: "decimal", value: "0" }),
      context_window_size: h("input", { type: "number", min: 1, value: 128000 }),
      max_output_tokens: h("input", { type: "number", min: 0, value: 4096 }),
      upstream_model: h("input", { type: "text", placeholder: "the same as the model id" }),
    };
    const labels = { model_id: "Model id", provider: "Provider", input_price_per_million: "Input price per million", output_price_per_million: "Output price per million",
      context_window_size: "Context window (tokens)", max_output_tokens: "Max output tokens", upstream_model: "Upstream model name" };
    const ok = await dialog({ title: "A new model", body: Object.entries(inputs).map(([k, el]) => field(labels[k], el)),
      actions: [{ label: "Cancel", value: false }, { label: "Create", kind: "primary", value: true }] });
    if (!ok) return;
    const body = {};
    for (const [k, el] of Object.entries(inputs)) {
      const v = el.value.trim();
      if (v === "") continue;
      body[k] = ["context_window_size", "max_output_tokens"].includes(k) ? Number(v) : v;
    }
    try {
      await api.post("/admin/models", body);
      toast(`${body.model_id} created.`);
      location.hash = `#models/${encodeURIComponent(body.model_id)}`;
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async function importModels() {
    const text = h("textarea", { rows: 10, placeholder: '{"models": [ ... ]}' });
    const file = h("input", { type: "file", accept: ".json,application/json" });
    file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
    const preview = h("div", { "data-import-preview": "" });
    const reason = h("input", { type: "text", maxlength: 500, value: "bulk import" });
    let checked = null;
    const check = button("Preview changes", async () => {
      checked = null;
      let body;
      try { body = JSON.parse(text.value); } catch { fill(preview, h("p", { class: "error-box", role: "alert" }, "That is not valid JSON.")); return; }
      try {
        const report = await api.post("/admin/models/bulk", body, { query: { dry_run: "true" } });
        checked = text.value;
        fill(preview, importReport(report));
      } catch (err) {
        fill(preview, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      }
    });
    const result = await dialog({
      title: "Import models",
      body: [h("p", { class: "muted small" }, "Paste or choose a document like the export's. Nothing is written until you apply it; every row is checked first."),
        field("Models (JSON)", text), field("Or a file", file), check, preview, field("Reason for the import", reason)],
      actions: [{ label: "Cancel", value: null }, { label: "Apply", kind: "primary", value: "apply" }],
    });
    if (result !== "apply") return;
    if (checked === null || checked !== text.value) { toast("Preview the changes before applying them.", "error"); return; }
    try {
      const report = await api.post("/admin/models/bulk", JSON.parse(checked), { query: { reason: reason.value.trim() } });
      toast(`Imported: ${report.created.length} created, ${report.updated.length} updated, ${report.unchanged.length} unchanged.`);
      await reloadAll();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  function importReport(report) {
    return h("div", { class: "stack" },
      h("p", {}, h("strong", {}, "Dry run: "), `${report.created.length} to create, ${report.updated.length} to update, ${report.unchanged.length} unchanged.`),
      report.created.length ? h("p", {}, "New: ", report.created.join(", ")) : null,
      report.updated.map((u) => h("div", { "data-import-update": u.model_id }, h("h3", {}, u.model_id),
        h("pre", { class: "diff" }, Object.entries(u.changes).flatMap(([k, [before, after]]) => [
          h("div", { class: "del" }, `- ${k}: ${JSON.stringify(before)}`),
          h("div", { class: "add" }, `+ ${k}: ${JSON.stringify(after)}`)])))));
  }

  async function exportModels() {
    try {
      const document_ = await api.get("/admin/models/export");
      const blob = new Blob([JSON.stringify(document_, null, 2) + "\n"], { type: "application/json" });
      const link = h("a", { href: URL.createObjectURL(blob), download: "models.json" });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async function reloadAll() {
    const [listed, profileList] = await Promise.all([api.get("/admin/models"), api.get("/admin/router/profiles")]);
    models = listed.data;
    profiles = Object.fromEntries(profileList.data.map((p) => [p.model_id, p]));
    const providers = [...new Set(models.map((m) => m.provider))].sort();
    fill(providerSelect, h("option", { value: "" }, "every provider"), providers.map((p) => h("option", { value: p }, p)));
    providerSelect.value = filters.provider;
    drawList();
    if (route.rest) await drawDetail();
  }

  await reloadAll();
}
