// Providers: the fallback order (drag and drop, or the move buttons), enable and disable,
// the API key in a write-only field, RPM/TPM limits with what they have taken, and timeouts.
import { h, fill, card, field, button, toast, number, errorText } from "../ui.js";

export const STYLES = true;

export async function render(root, { api }) {
  const order = h("ol", { class: "provider-order", id: "provider-order", "aria-label": "Fallback order" });
  const cards = h("div", { class: "grid" });
  fill(root, h("h1", {}, "Providers"),
    card("Fallback order",
      h("p", { class: "muted small" }, "Among a model's fallbacks, the models of providers higher in this list are tried first. Drag a provider, or use its move buttons; the order is saved at once."),
      order),
    cards);

  let providers = [];

  async function saveOrder(ids) {
    try {
      await api.post("/admin/models/reorder", { providers: ids }, { query: { reason: "fallback order from the console" } });
      toast("The fallback order was saved.");
    } catch (err) {
      toast(errorText(err), "error");
    }
    await load();
  }

  function move(id, offset) {
    const ids = providers.map((p) => p.id);
    const at = ids.indexOf(id);
    const to = at + offset;
    if (to < 0 || to >= ids.length) return;
    ids.splice(at, 1);
    ids.splice(to, 0, id);
    saveOrder(ids).then(() => order.querySelector(`[data-provider="${id}"] button[data-move="${offset < 0 ? "up" : "down"}"]`)?.focus());
  }

  function drawOrder() {
    let dragged = null;
    fill(order, providers.map((p, i) => {
      const item = h("li", { draggable: "true", "data-provider": p.id, class: p.enabled ? "" : "disabled" },
        h("span", { class: "grip", "aria-hidden": "true" }, "⋮⋮"),
        h("span", { class: "name" }, p.display_name || p.id, h("span", { class: "muted small" }, ` ${p.id} · ${p.kind} · priority ${p.fallback_priority}`)),
        p.enabled ? null : h("span", { class: "badge warn" }, "disabled"),
        h("span", { class: "moves" },
          button("↑", () => move(p.id, -1), { "aria-label": `Move ${p.id} up`, "data-move": "up", disabled: i === 0 }),
          button("↓", () => move(p.id, 1), { "aria-label": `Move ${p.id} down`, "data-move": "down", disabled: i === providers.length - 1 })));
      item.addEventListener("dragstart", (event) => {
        dragged = p.id;
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", p.id);
        item.classList.add("dragging");
      });
      item.addEventListener("dragend", () => item.classList.remove("dragging"));
      item.addEventListener("dragover", (event) => { event.preventDefault(); item.classList.add("over"); });
      item.addEventListener("dragleave", () => item.classList.remove("over"));
      item.addEventListener("drop", (event) => {
        event.preventDefault();
        item.classList.remove("over");
        const id = dragged || event.dataTransfer.getData("text/plain");
        if (!id || id === p.id) return;
        const ids = providers.map((q) => q.id).filter((q) => q !== id);
        const target = ids.indexOf(p.id);
        const from = providers.findIndex((q) => q.id === id);
        // Dropped on a provider below it: after that one; above it: before it.
        ids.splice(from < i ? target + 1 : target, 0, id);
        saveOrder(ids);
      });
      return item;
    }));
  }

  function limitLine(used, limit, unit) {
    if (!limit) return `no ${unit} limit`;
    return `${number(used)} of ${number(limit)} ${unit} per minute taken`;
  }

  function providerCard(p) {
    const write = async (call, done) => {
      try { await call(); toast(done); } catch (err) { toast(errorText(err), "error"); }
      await load();
    };
    const keyInput = h("input", { type: "password", autocomplete: "off", spellcheck: "false", placeholder: "paste a new key" });
    const keyState = p.api_key === "set"
      ? h("span", { class: "badge ok", "data-key-state": p.id }, p.api_key_last4 ? `set, ending ${p.api_key_last4}` : "set")
      : h("span", { class: "badge", "data-key-state": p.id }, "not set");
    const numberInput = (value, min, step = 1) => h("input", { type: "number", min, step, value });
    const rpm = numberInput(p.rpm, 0);
    const tpm = numberInput(p.tpm, 0);
    const connect = numberInput(p.connect_timeout, 0, 0.1);
    const read = numberInput(p.read_timeout, 0, 0.1);
    const total = numberInput(p.total_timeout, 0, 0.1);
    return h("section", { class: "card", "data-provider-card": p.id },
      h("div", { class: "spread" }, h("h2", {}, p.display_name || p.id),
        p.enabled
          ? button("Disable", () => write(() => api.post(`/admin/providers/${p.id}/disable`), `${p.id} is disabled.`), { "aria-label": `Disable ${p.id}` })
          : button("Enable", () => write(() => api.post(`/admin/providers/${p.id}/enable`), `${p.id} is enabled.`), { "aria-label": `Enable ${p.id}`, class: "primary" })),
      h("p", { class: "muted small" }, `${p.kind} · ${p.base_url || "default address"}${p.api_key_env ? ` · key from ${p.api_key_env} when set` : ""}`),
      h("fieldset", {}, h("legend", {}, "API key"),
        h("p", {}, "Stored key: ", keyState),
        field(`New API key for ${p.id}`, keyInput, "Write-only: the key is stored encrypted and never shown again."),
        h("div", { class: "row" },
          button("Save key", () => {
            const key = keyInput.value;
            keyInput.value = "";
            write(() => api.put(`/admin/providers/${p.id}/api-key`, { api_key: key }), `The key of ${p.id} was stored.`);
          }, { class: "primary", "aria-label": `Save the API key of ${p.id}` }),
          p.api_key === "set"
            ? button("Clear key", () => write(() => api.del(`/admin/providers/${p.id}/api-key`), `The key of ${p.id} was cleared.`), { class: "danger", "aria-label": `Clear the API key of ${p.id}` })
            : null)),
      h("fieldset", {}, h("legend", {}, "Limits and timeouts"),
        h("div", { class: "pair" },
          field("Requests per minute", rpm, limitLine(p.rpm_used, p.rpm, "requests")),
          field("Tokens per minute", tpm, limitLine(p.tpm_used, p.tpm, "tokens"))),
        h("div", { class: "triple" },
          field("Connect timeout (s)", connect, "0: the default"),
          field("Read timeout (s)", read, "0: none"),
          field("Total timeout (s)", total, "0: the default")),
        button("Save limits and timeouts", () => write(() => api.patch(`/admin/providers/${p.id}`, {
          rpm: Number(rpm.value), tpm: Number(tpm.value),
          connect_timeout: Number(connect.value), read_timeout: Number(read.value), total_timeout: Number(total.value),
        }, { query: { reason: "limits from the console" } }), `The limits of ${p.id} were saved.`), { "aria-label": `Save the limits and timeouts of ${p.id}` })));
  }

  async function load() {
    try {
      providers = (await api.get("/admin/providers")).data;
    } catch (err) {
      fill(cards, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    providers.sort((a, b) => a.fallback_priority - b.fallback_priority || a.id.localeCompare(b.id));
    drawOrder();
    fill(cards, providers.map(providerCard));
  }

  await load();
}
