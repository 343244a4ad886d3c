// Users, keys and tiers: balances and open holds, top-ups and adjustments with a reason and an
// idempotency key, each user's keys with their limits, spend and revocation, and the tiers.
import { h, fill, card, field, button, table, toast, dialog, usd, when, errorText, idempotencyKey, searchBox, confirmAction } from "../ui.js";

export const STYLES = true;

export async function render(root, { api, route }) {
  let users = [];
  let tiers = [];
  let filter = "";
  const list = h("div", {});
  const detail = h("div", { class: "stack" });
  const tierBox = h("div", {});
  fill(root, h("div", { class: "spread" }, h("h1", {}, "Users & keys"), button("Create user", createUser, { class: "primary" })),
    h("div", { class: "grid two" },
      card("Users", searchBox("Search users", (text) => { filter = text.toLowerCase(); drawList(); }), list),
      detail),
    card("Pricing tiers", tierBox));

  const selected = () => route.rest || null;

  function drawList() {
    const rows = users.filter((u) => !filter || `${u.id} ${u.name}`.toLowerCase().includes(filter));
    fill(list, table({
      columns: [
        { label: "User", value: (u) => h("a", { href: `#users/${encodeURIComponent(u.id)}` }, u.id) },
        { label: "Name", value: (u) => u.name },
        { label: "Tier", value: (u) => u.tier_id },
        { label: "Balance", value: (u) => usd(u.balance_usd), class: "num" },
      ],
      rows,
      empty: "No user matches.",
      rowAttrs: (u) => ({ class: u.id === selected() ? "selected" : "", "data-user": u.id }),
    }));
  }

  async function createUser() {
    const id = h("input", { type: "text", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._@-]*" });
    const name = h("input", { type: "text" });
    const tier = h("select", {}, tiers.map((t) => h("option", { value: t.id }, `${t.id} (${t.markup_percent}% markup)`)));
    const ok = await dialog({ title: "Create a user", body: [field("User id", id), field("Name", name), field("Tier", tier)],
      actions: [{ label: "Cancel", value: false }, { label: "Create", kind: "primary", value: true }] });
    if (!ok) return;
    try {
      await api.post("/admin/users", { id: id.value.trim(), name: name.value.trim() || id.value.trim(), tier_id: tier.value });
      toast(`User ${id.value.trim()} created.`);
      location.hash = `#users/${encodeURIComponent(id.value.trim())}`;
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async function drawDetail() {
    const userId = selected();
    if (!userId) {
      fill(detail, card("A user", h("p", { class: "muted" }, "Choose a user to see its balance, top it up, and manage its keys.")));
      return;
    }
    let user, keys;
    try {
      [user, keys] = await Promise.all([
        api.get(`/admin/users/${encodeURIComponent(userId)}`),
        api.get(`/admin/users/${encodeURIComponent(userId)}/keys`),
      ]);
    } catch (err) {
      fill(detail, card(userId, h("p", { class: "error-box", role: "alert" }, errorText(err))));
      return;
    }
    fill(detail, balanceCard(user), keysCard(user, keys.data));
  }

  function balanceCard(user) {
    const kind = h("select", {}, h("option", { value: "topup" }, "Top-up"), h("option", { value: "adjust" }, "Adjustment (signed)"));
    const amount = h("input", { type: "text", inputmode: "decimal", placeholder: "25.00", required: true });
    const reason = h("input", { type: "text", maxlength: 500 });
    const key = h("input", { type: "text", value: idempotencyKey(), class: "mono" });
    const result = h("p", { "aria-live": "polite", "data-credit-result": "" });
    const submit = button("Apply", async () => {
      submit.disabled = true;
      try {
        const answer = await api.post(`/admin/users/${encodeURIComponent(user.id)}/${kind.value}`,
          { amount_usd: amount.value.trim(), reason: reason.value.trim(), idempotency_key: key.value.trim() || undefined });
        fill(result, answer.replayed
          ? [h("span", { class: "badge warn" }, "replayed"), ` Already applied with this idempotency key: nothing changed. Balance ${usd(answer.balance_usd)}.`]
          : [h("span", { class: "badge ok" }, "applied"), ` ${usd(answer.amount_usd)} recorded. Balance ${usd(answer.balance_usd)}.`]);
        await loadUsers();
        fill(balance, usd(answer.balance_usd));
      } catch (err) {
        fill(result, h("span", { class: "error-box", role: "alert" }, errorText(err)));
      } finally {
        submit.disabled = false;
      }
    }, { class: "primary" });
    const balance = h("span", { class: "stat", "data-balance": user.id }, usd(user.balance_usd));
    return card(`${user.name || user.id}`,
      h("p", { class: "muted small" }, `${user.id} · tier ${user.tier_id}`),
      h("div", { class: "row stats" }, h("div", {}, h("div", { class: "muted small" }, "Balance"), balance),
        h("div", {}, h("div", { class: "muted small" }, "Held by requests in flight"), h("span", { class: "stat" }, usd(user.held_usd)))),
      h("fieldset", {}, h("legend", {}, "Credit or adjust"),
        field("Kind", kind),
        field("Amount (USD)", amount, "An adjustment may be negative and needs a reason."),
        field("Reason", reason),
        field("Idempotency key", key, "Sending the same key again is applied once, so a retry cannot credit twice."),
        h("div", { class: "row" }, submit, button("New idempotency key", () => { key.value = idempotencyKey(); fill(result); })),
        result));
  }

  function keysCard(user, keys) {
    const name = h("input", { type: "text" });
    const models = h("input", { type: "text", placeholder: "all models" });
    const rpm = h("input", { type: "number", min: 0, value: 0 });
    const tpm = h("input", { type: "number", min: 0, value: 0 });
    const cap = h("input", { type: "text", inputmode: "decimal", placeholder: "no cap" });
    const create = button("Create key", async () => {
      const body = { name: name.value.trim(), rpm: Number(rpm.value), tpm: Number(tpm.value) };
      const allowed = models.value.split(",").map((m) => m.trim()).filter(Boolean);
      if (allowed.length) body.allowed_models = allowed;
      if (cap.value.trim()) body.spend_cap_usd = cap.value.trim();
      try {
        const made = await api.post(`/admin/users/${encodeURIComponent(user.id)}/keys`, body);
        await dialog({ title: "The new key", body: [
          h("p", {}, "Copy it now: it is shown this once and kept only as a hash."),
          h("pre", { class: "json", "data-new-key": "" }, made.key)] });
        await drawDetail();
      } catch (err) {
        toast(errorText(err), "error");
      }
    }, { class: "primary" });
    return card("API keys",
      table({
        columns: [
          { label: "Key", value: (k) => h("span", { class: "mono" }, `${k.prefix}…`) },
          { label: "Name", value: (k) => k.name || "—" },
          { label: "Limits", value: (k) => `${k.rpm || "∞"} rpm · ${k.tpm || "∞"} tpm${k.allowed_models.length ? ` · ${k.allowed_models.join(", ")}` : ""}`, class: "small" },
          { label: "Spent / cap", value: (k) => `${usd(k.spent_usd)} / ${k.spend_cap_usd ? usd(k.spend_cap_usd) : "none"}`, class: "num" },
          { label: "Last used", value: (k) => when(k.last_used_at) },
          { label: "", class: "actions", value: (k) => k.revoked ? h("span", { class: "badge bad" }, "revoked") : [
            button("Edit", () => editKey(k), { "aria-label": `Edit key ${k.prefix}` }), " ",
            button("Revoke", () => revokeKey(k), { class: "danger", "aria-label": `Revoke key ${k.prefix}` })] },
        ],
        rows: keys,
        empty: "This user has no key.",
      }),
      h("fieldset", {}, h("legend", {}, "A new key"),
        field("Key name", name), field("Allowed models (comma-separated)", models),
        h("div", { class: "row" }, field("RPM", rpm), field("TPM", tpm), field("Spend cap (USD)", cap)),
        create));
  }

  async function editKey(k) {
    const name = h("input", { type: "text", value: k.name });
    const rpm = h("input", { type: "number", min: 0, value: k.rpm });
    const tpm = h("input", { type: "number", min: 0, value: k.tpm });
    const models = h("input", { type: "text", value: k.allowed_models.join(", ") });
    const cap = h("input", { type: "text", value: k.spend_cap_usd || "" });
    const ok = await dialog({ title: `Key ${k.prefix}…`, body: [field("Key name", name), field("RPM", rpm), field("TPM", tpm),
      field("Allowed models (comma-separated, empty: all)", models), field("Spend cap (USD, empty: none)", cap)],
      actions: [{ label: "Cancel", value: false }, { label: "Save", kind: "primary", value: true }] });
    if (!ok) return;
    try {
      await api.patch(`/admin/keys/${k.id}`, {
        name: name.value.trim(), rpm: Number(rpm.value), tpm: Number(tpm.value),
        allowed_models: models.value.split(",").map((m) => m.trim()).filter(Boolean),
        spend_cap_usd: cap.value.trim() || null,
      });
      toast("The key's limits were saved.");
      await drawDetail();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async function revokeKey(k) {
    if (!(await confirmAction("Revoke this key?", `Key ${k.prefix}… stops working at once; this cannot be undone.`, "Revoke", "danger"))) return;
    try {
      await api.post(`/admin/keys/${k.id}/revoke`);
      toast("The key was revoked.");
      await drawDetail();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  function drawTiers() {
    const id = h("input", { type: "text" });
    const name = h("input", { type: "text" });
    const markup = h("input", { type: "text", inputmode: "decimal", value: "0" });
    fill(tierBox, table({
      columns: [
        { label: "Tier", value: (t) => t.id },
        { label: "Name", value: (t) => t.name || "—" },
        { label: "Markup", value: (t) => {
          const input = h("input", { type: "text", inputmode: "decimal", value: t.markup_percent, class: "markup", "aria-label": `Markup percent of ${t.id}` });
          input.addEventListener("change", async () => {
            try {
              await api.patch(`/admin/tiers/${encodeURIComponent(t.id)}`, { markup_percent: input.value.trim() }, { query: { reason: "markup from the console" } });
              toast(`${t.id}: markup is now ${input.value.trim()}%.`);
            } catch (err) {
              input.value = t.markup_percent;
              toast(errorText(err), "error");
            }
            await loadTiers();
          });
          return [input, " %"];
        } },
        { label: "Users", value: (t) => String(users.filter((u) => u.tier_id === t.id).length), class: "num" },
        { label: "", class: "actions", value: (t) => button("Delete", async () => {
          if (!(await confirmAction("Delete this tier?", `Tier ${t.id} is deleted (refused while a user is on it).`, "Delete", "danger"))) return;
          try { await api.del(`/admin/tiers/${encodeURIComponent(t.id)}`); toast(`Tier ${t.id} deleted.`); } catch (err) { toast(errorText(err), "error"); }
          await loadTiers();
        }, { class: "danger", "aria-label": `Delete tier ${t.id}` }) },
      ],
      rows: tiers,
    }), h("fieldset", {}, h("legend", {}, "A new tier"),
      h("div", { class: "row" }, field("Tier id", id), field("Tier name", name), field("Markup (%)", markup)),
      button("Create tier", async () => {
        try {
          await api.post("/admin/tiers", { id: id.value.trim(), name: name.value.trim(), markup_percent: markup.value.trim() });
          toast(`Tier ${id.value.trim()} created.`);
          await loadTiers();
        } catch (err) {
          toast(errorText(err), "error");
        }
      })));
  }

  async function loadUsers() {
    users = (await api.get("/admin/users")).data;
    drawList();
  }

  async function loadTiers() {
    tiers = (await api.get("/admin/tiers")).data;
    drawTiers();
  }

  await Promise.all([loadUsers(), loadTiers()]);
  drawTiers(); // again, now that the users each tier counts are known
  await drawDetail();
}
