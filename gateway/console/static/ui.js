// Small DOM helpers every page uses: elements, tables, fields, dialogs, toasts, diffs, formats.

/** h("button", {class: "primary", onclick: fn}, "Save") builds an element. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
                 : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" && !svg) {
      el.value = value;
    } else if (name === "checked" && !svg) {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/input pairs. */
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled field: field("Name", input, "hint"). The input gets an id if it has none. */
export function field(label, input, hint) {
  if (!input.id) input.id = nextId();
  const wrap = h("label", { class: "field", for: input.id },
    h("span", { class: "label" }, label), input, hint ? h("span", { class: "hint" }, hint) : null);
  return wrap;
}

export function button(text, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, text);
}

/**
 * table({caption, columns: [{label, value: row => text|Node, class}], rows, empty, rowAttrs})
 */
export function table({ caption, columns, rows, empty = "Nothing here yet.", rowAttrs }) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label))));
  const body = h("tbody", {});
  if (!rows.length) {
    body.append(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty)));
  }
  for (const row of rows) {
    body.append(h("tr", rowAttrs ? rowAttrs(row) : {},
      columns.map((c) => h("td", { class: c.class }, c.value(row)))));
  }
  return h("div", { class: "table-wrap" }, h("table", {}, caption ? h("caption", {}, caption) : null, head, body));
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

/** Show a short message in the corner; errors stay longer. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 3500);
}

/**
 * A modal dialog. dialog({title, body: [nodes], actions: [{label, kind, value}]})
 * resolves with the chosen action's value, or null when dismissed.
 */
export function dialog({ title, body, actions = [{ label: "Close", value: null }], label }) {
  return new Promise((resolve) => {
    const heading = h("h2", { id: nextId("dlg") }, title);
    const box = h("dialog", { "aria-labelledby": heading.id, "aria-label": label });
    const form = h("form", { method: "dialog", class: "dialog-body" }, heading, body,
      h("div", { class: "dialog-actions" },
        actions.map((a) => h("button", { value: a.id || a.label, class: a.kind, type: "submit" }, a.label))));
    box.append(form);
    box.addEventListener("close", () => {
      const chosen = actions.find((a) => (a.id || a.label) === box.returnValue);
      box.remove();
      resolve(chosen ? chosen.value : null);
    });
    document.body.append(box);
    box.showModal();
  });
}

export async function confirmAction(title, message, label = "Confirm", kind = "primary") {
  const result = await dialog({
    title,
    body: [h("p", {}, message)],
    actions: [{ label: "Cancel", value: false }, { label, kind, value: true }],
  });
  return result === true;
}

/** The lines that differ between two JSON documents, as a <pre> of - and + lines. */
export function jsonDiff(before, after) {
  const lines = [];
  const a = flatten(before ?? {});
  const b = flatten(after ?? {});
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  for (const key of keys) {
    if (a[key] === b[key]) continue;
    if (key in a) lines.push(h("div", { class: "del" }, `- ${key}: ${a[key]}`));
    if (key in b) lines.push(h("div", { class: "add" }, `+ ${key}: ${b[key]}`));
  }
  if (before === null || before === undefined) lines.unshift(h("div", { class: "muted" }, "(created)"));
  if (after === null || after === undefined) lines.unshift(h("div", { class: "muted" }, "(deleted)"));
  if (!lines.length) lines.push(h("div", { class: "muted" }, "(no change)"));
  return h("pre", { class: "diff" }, lines);
}

function flatten(value, prefix = "", out = {}) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    if (!Object.keys(value).length && prefix) out[prefix] = "{}";
  } else {
    out[prefix || "(value)"] = JSON.stringify(value);
  }
  return out;
}

/** "1.234567890" USD as text with a $ and at least two decimals, never through a float. */
export function usd(text) {
  if (text === null || text === undefined || text === "") return "—";
  let s = String(text);
  const negative = s.startsWith("-");
  if (negative) s = s.slice(1);
  let [whole, frac = ""] = s.split(".");
  frac = frac.replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}$${whole}.${frac}`;
}

export function number(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

/** An ISO time or unix seconds, shown in the browser's zone. */
export function when(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

/** What an error says, for a toast or an inline message. */
export function errorText(err) {
  if (err && err.message) return err.code ? `${err.message} (${err.code})` : err.message;
  return String(err);
}

/** A random idempotency key for a money write. */
export function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A search box that calls onInput (debounced) with its text. */
export function searchBox(label, onInput, value = "") {
  let timer = null;
  const input = h("input", { type: "search", value, placeholder: label, "aria-label": label });
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => onInput(input.value.trim()), 120);
  });
  return input;
}
