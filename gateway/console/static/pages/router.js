// Router: every knob of the auto-router as a slider or input with its valid range, a live
// simulation beside them that decides with the unsaved draft, save with a reason, the history
// with diffs and rollback, and the profile grid (eight category scores per model) in place.
import { h, fill, card, field, button, table, toast, errorText } from "../ui.js";
import { historyCard } from "../history.js";

export const STYLES = true;

const SECTIONS = [
  ["complexity_multipliers", "Complexity multipliers"],
  ["bonuses", "Bonuses"],
  ["cost_tiers", "Cost tiers (USD per million tokens, blended)"],
  ["cost_penalties", "Cost penalties"],
  ["preset_cost_weights", "How much cost counts, per preset"],
  ["", "Quality, chain and memory"],
  ["classifier", "Classifier"],
];
const CATEGORIES = ["coding", "reasoning", "creative", "factual", "analysis", "conversation", "multimodal", "research"];
const SAMPLE = "Write a Python function that merges two sorted lists and explain its complexity.";

function get(doc, path) {
  return path.split(".").reduce((node, key) => (node == null ? undefined : node[key]), doc);
}

function set(doc, path, value) {
  const keys = path.split(".");
  let node = doc;
  for (const key of keys.slice(0, -1)) node = node[key] ??= {};
  node[keys.at(-1)] = value;
}

function stepOf(knob) {
  if (knob.kind === "integer") return 1;
  const span = knob.max - knob.min;
  return span <= 10 ? 0.05 : span <= 200 ? 0.5 : 0.1;
}

export async function render(root, { api }) {
  let stored;      // GET /admin/router/config
  let values = {}; // path -> the value in the form
  let timer = null;
  const knobBox = h("div", {});
  const simulation = h("div", { id: "simulation", "aria-live": "polite" });
  const reason = h("input", { type: "text", placeholder: "why this change", maxlength: 500 });
  const saveButton = button("Save", save, { class: "primary" });
  const resetButton = button("Discard changes", () => { values = currentValues(stored.config); drawKnobs(); refreshDraft(); });
  const draftNote = h("span", { class: "muted small", id: "draft-note" });
  const source = h("p", {});
  const history = historyCard({ api, title: "History of the router config", entity: "router_config", onRolledBack: load });
  const profiles = h("div", {});
  const prompt = h("textarea", { rows: 4 }, SAMPLE);
  prompt.value = SAMPLE;
  const preset = h("select", {}, ["auto", "auto:cheap", "auto:balanced", "auto:best"].map((p) => h("option", { value: p }, p)));
  prompt.addEventListener("input", scheduleSimulate);
  preset.addEventListener("change", scheduleSimulate);

  fill(root,
    h("h1", {}, "Router"),
    source,
    h("div", { class: "grid two router-grid" },
      card("Knobs", knobBox,
        h("div", { class: "save-bar" }, field("Reason for the change", reason),
          h("div", { class: "row" }, saveButton, resetButton, draftNote))),
      card("Simulate",
        h("p", { class: "muted small" }, "Decides as the knobs on the left would, before anything is saved. No provider is called."),
        field("Prompt, or a chat request as JSON", prompt),
        field("Preset", preset),
        simulation)),
    history.element,
    card("Profiles: the score of each model in each category", h("p", { class: "muted small" },
      "Each cell saves when it changes (0 to 100); the change is recorded in the history."), profiles));

  function currentValues(config) {
    const out = {};
    for (const knob of stored.knobs) out[knob.path] = get(config, knob.path);
    return out;
  }

  function draft() {
    const patch = {};
    let changed = 0;
    for (const knob of stored.knobs) {
      const now = values[knob.path];
      if (String(now) !== String(get(stored.config, knob.path))) {
        set(patch, knob.path, knob.kind === "string" ? now : Number(now));
        changed += 1;
      }
    }
    return changed ? patch : null;
  }

  function refreshDraft() {
    const patch = draft();
    const count = patch ? stored.knobs.filter((k) => String(values[k.path]) !== String(get(stored.config, k.path))).length : 0;
    saveButton.disabled = !patch;
    resetButton.disabled = !patch;
    draftNote.textContent = patch ? `${count} unsaved change${count === 1 ? "" : "s"}` : "No unsaved change.";
    scheduleSimulate();
  }

  function knobControl(knob) {
    const name = knob.path.split(".").at(-1).replaceAll("_", " ");
    const hint = knob.kind === "string" ? "empty: the local classifier" : `${knob.min} to ${knob.max}; default ${knob.default}`;
    if (knob.kind === "string") {
      const input = h("input", { type: "text", value: values[knob.path] ?? "", "data-knob": knob.path });
      input.addEventListener("input", () => { values[knob.path] = input.value; refreshDraft(); });
      return field(name, input, hint);
    }
    const number = h("input", { type: "number", min: knob.min, max: knob.max, step: stepOf(knob), value: values[knob.path], "data-knob": knob.path, class: "knob-number" });
    const wide = knob.max - knob.min > 200;
    const slider = wide ? null : h("input", { type: "range", min: knob.min, max: knob.max, step: stepOf(knob), value: values[knob.path], "aria-label": `${knob.path} slider`, "data-knob-slider": knob.path });
    const update = (raw, from) => {
      values[knob.path] = raw === "" ? get(stored.config, knob.path) : Number(raw);
      if (from !== number) number.value = raw;
      if (slider && from !== slider) slider.value = raw;
      const bad = raw === "" || Number(raw) < knob.min || Number(raw) > knob.max;
      number.setAttribute("aria-invalid", bad ? "true" : "false");
      refreshDraft();
    };
    number.addEventListener("input", () => update(number.value, number));
    if (slider) slider.addEventListener("input", () => update(slider.value, slider));
    return h("div", { class: "knob" }, field(name, number, hint), slider);
  }

  function drawKnobs() {
    fill(knobBox, SECTIONS.map(([section, title]) => {
      const knobs = stored.knobs.filter((k) => (k.path.includes(".") ? k.path.split(".")[0] : "") === section);
      return h("fieldset", {}, h("legend", {}, title), knobs.map(knobControl));
    }));
  }

  function scheduleSimulate() {
    clearTimeout(timer);
    timer = setTimeout(simulate, 150);
  }

  async function simulate() {
    const text = prompt.value.trim();
    let body;
    if (text.startsWith("{")) {
      try { body = JSON.parse(text); } catch {
        fill(simulation, h("p", { class: "error-box", role: "alert" }, "That is not valid JSON."));
        return;
      }
    } else {
      body = { messages: [{ role: "user", content: text || "Hello" }] };
    }
    body.model = preset.value;
    const patch = draft();
    if (patch) body.config = patch;
    let result;
    try {
      result = await api.post("/admin/router/simulate", body);
    } catch (err) {
      fill(simulation, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    drawSimulation(result);
  }

  function drawSimulation(result) {
    const terms = (c) => (c.stickiness_bonus || c.reasoning_bonus || c.research_bonus)
      ? `+${c.stickiness_bonus} sticky +${c.reasoning_bonus} reasoning +${c.research_bonus} research` : "—";
    fill(simulation,
      h("p", {}, "Category ", h("strong", { "data-sim": "category" }, result.category),
        ", complexity ", h("strong", { "data-sim": "complexity" }, result.complexity),
        h("span", { class: "muted small" }, ` (by ${result.classified_by})`),
        result.draft ? h("span", { class: "badge warn" }, " unsaved draft") : null),
      h("p", {}, "Chain: ", h("strong", { "data-sim": "chain" }, result.chain.join(" → ") || "none")),
      table({
        caption: "Candidates, best first",
        columns: [
          { label: "#", value: (c) => String(result.candidates.indexOf(c) + 1), class: "num" },
          { label: "Model", value: (c) => c.model },
          { label: "Score", value: (c) => String(c.category_score), class: "num" },
          { label: "× mult.", value: (c) => String(c.complexity_multiplier), class: "num" },
          { label: "= base", value: (c) => String(c.base), class: "num" },
          { label: "Bonuses", value: terms, class: "small" },
          { label: "Cost tier", value: (c) => `${c.cost_tier} ($${Number(c.blended_price_per_million).toFixed(2)})` },
          { label: "− penalty", value: (c) => String(c.cost_penalty), class: "num" },
          { label: "Total", value: (c) => h("strong", {}, String(c.total)), class: "num" },
        ],
        rows: result.candidates,
        empty: "No model can serve this request.",
        rowAttrs: (c) => ({ "data-candidate": c.model }),
      }),
      result.excluded.length
        ? h("details", {}, h("summary", {}, `${result.excluded.length} excluded`),
          h("ul", { class: "small" }, result.excluded.map((e) => h("li", {}, `${e.model}: ${e.reason}`))))
        : null);
  }

  async function save() {
    const patch = draft();
    if (!patch) return;
    saveButton.disabled = true;
    try {
      await api.put("/admin/router/config", patch, { query: { reason: reason.value.trim() } });
      toast("The router config was saved.");
      reason.value = "";
      await load();
    } catch (err) {
      toast(errorText(err), "error");
      saveButton.disabled = false;
    }
  }

  async function drawProfiles() {
    let data;
    try { data = (await api.get("/admin/router/profiles")).data; } catch (err) {
      fill(profiles, h("p", { class: "error-box", role: "alert" }, errorText(err)));
      return;
    }
    const cell = (profile, category) => {
      const input = h("input", { type: "number", min: 0, max: 100, step: 1, value: profile.scores[category], class: "score",
        "aria-label": `${profile.model_id} ${category} score`, "data-score": `${profile.model_id}:${category}` });
      input.addEventListener("change", async () => {
        const value = Number(input.value);
        try {
          const saved = await api.put(`/admin/router/profiles/${encodeURIComponent(profile.model_id)}`,
            { scores: { [category]: value } }, { query: { reason: `${category} score from the console` } });
          profile.scores = saved.profile.scores;
          input.removeAttribute("aria-invalid");
          toast(`${profile.model_id}: ${category} is now ${value}.`);
          scheduleSimulate();
        } catch (err) {
          input.value = profile.scores[category];
          input.setAttribute("aria-invalid", "true");
          toast(errorText(err), "error");
        }
      });
      return input;
    };
    fill(profiles, table({
      columns: [
        { label: "Model", value: (p) => p.model_id },
        { label: "Quality", value: (p) => String(p.quality), class: "num" },
        { label: "Speed", value: (p) => p.speed_tier },
        ...CATEGORIES.map((c) => ({ label: c, value: (p) => cell(p, c) })),
      ],
      rows: data,
      empty: "No profile: no model is auto-routed.",
    }));
  }

  async function load() {
    stored = await api.get("/admin/router/config");
    values = currentValues(stored.config);
    fill(source, stored.source === "database"
      ? [h("span", { class: "badge ok" }, "database"), " The config below is the one in effect (GATEWAY_ROUTER_CONFIG=database)."]
      : [h("span", { class: "badge warn" }, "built-in"), " GATEWAY_ROUTER_CONFIG=builtin: the built-in config is in effect; what is saved here applies once it is set to database."]);
    drawKnobs();
    refreshDraft();
    await Promise.all([history.reload(), drawProfiles()]);
  }

  await load();
  return () => clearTimeout(timer);
}
