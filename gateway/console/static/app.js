// The console's shell: the session, the admin API client, the page list and the hash router.
import { h, fill, toast, errorText } from "./ui.js";

export const PAGES = [
  { id: "overview", title: "Overview" },
  { id: "models", title: "Models" },
  { id: "providers", title: "Providers" },
  { id: "router", title: "Router" },
  { id: "users", title: "Users & keys" },
  { id: "budgets", title: "Budgets & teams" },
  { id: "usage", title: "Usage" },
];

/** An error answer of the admin API: its status, message, code and param. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.param = error.param || null;
  }
}

let session = null;

async function request(method, path, { body, query, headers = {}, raw = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") init.headers["x-console-csrf"] = session.csrf;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 401) {
    location.assign("/console/sign-in");
    throw new ApiError(401, { error: { message: "Signed out." } });
  }
  if (raw) return response;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** The admin API, with the session's cookie and (on writes) its CSRF token. */
export const api = {
  get: (path, query, options = {}) => request("GET", path, { query, ...options }),
  post: (path, body, options = {}) => request("POST", path, { body, ...options }),
  put: (path, body, options = {}) => request("PUT", path, { body, ...options }),
  patch: (path, body, options = {}) => request("PATCH", path, { body, ...options }),
  del: (path, options = {}) => request("DELETE", path, options),
};

/** Where the hash points: #models/gpt-4o?tab=prices -> {page, rest, query}. */
export function currentRoute() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [pathPart, queryPart = ""] = hash.split("?");
  const [page, ...rest] = pathPart.split("/");
  const known = PAGES.some((p) => p.id === page);
  return { page: known ? page : "overview", rest: rest.join("/"), query: new URLSearchParams(queryPart) };
}

let cleanup = null;

async function show() {
  const route = currentRoute();
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === route.page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const root = document.getElementById("page");
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  const title = PAGES.find((p) => p.id === route.page).title;
  document.title = `${title}: gateway console`;
  fill(root, h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await import(`./pages/${route.page}.js`);
    if (module.STYLES && !document.querySelector(`link[data-page-styles=${route.page}]`)) {
      // A page's own rules, in pages/<page>.css, loaded with the page the first time.
      document.head.append(h("link", { rel: "stylesheet", href: `/console/assets/pages/${route.page}.css`, "data-page-styles": route.page }));
    }
    const page = h("div", { class: "stack", "data-page": route.page });
    fill(root, page);
    cleanup = await module.render(page, { api, route, session });
  } catch (err) {
    fill(root, h("h1", {}, title), h("p", { class: "error-box", role: "alert" }, errorText(err)));
  }
}

async function start() {
  session = await (await fetch("/console/session", { credentials: "same-origin" })).json();
  if (!session || !session.csrf) {
    location.assign("/console/sign-in");
    return;
  }
  fill(document.getElementById("who"), `Signed in as ${session.admin}`);
  fill(document.getElementById("nav"), PAGES.map((p) =>
    h("li", {}, h("a", { href: `#${p.id}`, "data-page": p.id }, p.title))));
  document.getElementById("sign-out").addEventListener("click", async () => {
    try { await api.post("/console/sign-out"); } catch (err) { toast(errorText(err), "error"); }
    location.assign("/console/sign-in");
  });
  window.addEventListener("hashchange", show);
  await show();
}

start();
