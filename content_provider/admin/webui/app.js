// The web page's one script: reads everything from the admin API and draws it.
// Text from the server (content ids, names, messages) only ever goes in as textContent.
"use strict";

const BASE = document.body.dataset.base;
const ADMIN = BASE + "/__admin";
const TOKEN_KEY = "content-provider-admin-token";
const MAX_OWNERS = 48; // previews drawn at once; the filter narrows a large fixture set
const JOURNAL_ROWS = 100;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  inventory: null,
  inventoryText: "",
  rulesText: "",
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...present(children));
  return node;
}

// Children without the null/undefined that optional parts leave (append would print "null").
function present(children) {
  return children.filter((child) => child !== undefined && child !== null);
}

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(ADMIN + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (response.status === 401 || response.status === 403 || response.status === 404 && data && data.error === "not_found") {
    showAccess(response.status, data);
  } else if (response.ok) {
    $("access").hidden = true;
  }
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

function showAccess(status, data) {
  const banner = $("access");
  banner.hidden = false;
  banner.textContent =
    status === 401
      ? (state.token ? "The admin token was refused. " : "This server has an admin token (admin.token). ") +
        "Enter it at the top right to see fixtures, traffic and faults."
      : (data && data.message) || `The admin API answered ${status}.`;
}

// ------------------------------------------------------------------ cards

function today() {
  return new Date().toISOString().slice(0, 10);
}

function overlay(side) {
  const colour = $("colour-" + side).value;
  return el(
    "div",
    { class: "overlay text-" + colour.toLowerCase(), "data-colour": colour },
    el("div", { class: "text-name", text: $("text-name").value }),
    el("div", { class: "text-issuer", text: $("text-issuer").value }),
    el("div", { class: "text-activated", text: "Activated " + today() }),
  );
}

function jwsBadge(jws) {
  if (!jws) return null;
  if (jws.recorded) {
    return el("p", {
      class: "badge ok",
      text: `recorded: the upstream's JWS as it was, signed ${jws.alg} by ${jws.signer ?? "a certificate not named in x5c"}`,
    });
  }
  if (jws.verified) {
    return el("p", {
      class: "badge ok",
      text: `signed ${jws.alg}, verified against the JWKS (kid ${String(jws.kid).slice(0, 12)}…${jws.x5c ? ", x5c" : ""})`,
    });
  }
  return el("p", { class: "badge bad", text: "not verified: " + jws.error });
}

function sideFigure(image, label, card) {
  const img = el("img", { src: image.dataUri, alt: label, class: "preview-image" });
  const frame = el("div", { class: card ? "card-frame" : "auth-frame" }, img);
  if (card) frame.append(overlay(image.key === "back" ? "back" : "front"));
  return el(
    "figure",
    { class: "side", "data-key": image.key },
    frame,
    el("figcaption", { text: `${label} · ${Math.round(image.bytes / 1024)} kB` }),
    jwsBadge(image.jws),
  );
}

function problemList(problems) {
  if (!problems || problems.length === 0) return null;
  return el("ul", { class: "problems" }, ...problems.map((p) => el("li", { text: `${p.path}: ${p.reason}` })));
}

function why(answer) {
  if (answer.level === "default") return "the default images (no user or organisation has one)";
  return `${answer.level} ${answer.owner}`;
}

async function previewInto(container, query, useCase) {
  const params = new URLSearchParams(query);
  if (useCase) params.set("useCase", useCase);
  try {
    const answer = await api("GET", "/preview?" + params);
    const files = Object.entries(answer.files).map(([k, f]) => `${k}: ${f}`).join(", ");
    const card = answer.useCase === "PROV";
    container.replaceChildren(...present([
      el("p", { class: "why", text: `${answer.useCase} → ${why(answer)} (${files})` }),
      answer.served ? null : el("p", { class: "badge bad", text: "not served: " + answer.error }),
      el(
        "div",
        { class: "sides" },
        ...answer.images.map((image) => sideFigure(image, image.key.replace("_", " "), card)),
      ),
      problemList(answer.problems),
    ]));
  } catch (failure) {
    container.replaceChildren(el("p", { class: "muted", text: failure.message }));
  }
}

async function explainInto(container, contentId) {
  // each step of the resolution order and the near misses, from the server's explanation
  let explanation;
  try {
    explanation = (await api("GET", "/fixtures/resolve?" + new URLSearchParams({ contentId }))).explanation;
  } catch (failure) {
    explanation = failure.body?.explanation;
    if (!explanation) {
      container.replaceChildren(el("p", { class: "muted", text: failure.message }));
      return;
    }
  }
  const steps = explanation.steps.map((step) =>
    el("li", { class: step.answered ? "answered" : "", text: `${step.level} ${step.target}: ${step.why}` }),
  );
  const misses = explanation.nearMisses.map((miss) => el("li", { text: `${miss.target} (${miss.why})` }));
  container.replaceChildren(...present([
    el("p", { text: `Why: ${explanation.answeredBy ? "answered by " + explanation.answeredBy : "nothing answers (404)"}` }),
    el("ol", { class: "steps" }, ...steps),
    misses.length ? el("p", { text: "Near misses:" }) : null,
    misses.length ? el("ul", { class: "near-misses" }, ...misses) : null,
  ]));
}

function ownerSection(level, name, detail, images, problems) {
  const query = level === "default" ? { default: "" } : { [level === "organisation" ? "org" : "user"]: name };
  const heading = level === "default" ? "Default" : `${level === "organisation" ? "Organisation" : "User"} ${name}`;
  const section = el(
    "article",
    { class: "owner", "data-level": level, "data-owner": name },
    el("h3", { text: heading }),
    detail ? el("p", { class: "muted", text: detail }) : null,
    problemList(problems),
  );
  const card = el("div", { class: "preview" });
  const auth = el("div", { class: "preview" });
  section.append(card, auth);
  if (images.includes("front")) previewInto(card, query, "PROV");
  else card.append(el("p", { class: "muted", text: "No card image of its own: a card id falls through to the next level." }));
  if (images.includes("auth")) previewInto(auth, query, "AUTH");
  return section;
}

function problemsUnder(prefix) {
  return (state.inventory.problems || []).filter((p) => p.path.startsWith(prefix));
}

function drawOwners() {
  const inv = state.inventory;
  if (!inv) return;
  const filter = $("filter").value.trim().toLowerCase();
  const owners = [];
  if (inv.default.length) owners.push(["default", "default", "", inv.default, problemsUnder("default/")]);
  for (const org of inv.organisations) {
    const members = [...org.members, ...org.patterns];
    const detail = members.length ? "Members: " + members.join(", ") : "No members listed (members.txt)";
    owners.push(["organisation", org.name, detail, org.images, problemsUnder(`orgs/${org.name}/`)]);
  }
  for (const user of inv.users) {
    owners.push(["user", user.name, `Content ids PROV:${user.name}, AUTH:${user.name}`, user.images, problemsUnder(`users/${user.name}/`)]);
  }
  const shown = owners.filter(([, name, detail]) => !filter || name.toLowerCase().includes(filter) || detail.toLowerCase().includes(filter));
  $("fixture-summary").textContent =
    `${inv.users.length} users, ${inv.organisations.length} organisations, default ${inv.default.length ? "on" : "off"}` +
    (shown.length > MAX_OWNERS ? ` · showing ${MAX_OWNERS} of ${shown.length} (filter to narrow)` : "");
  $("owners").replaceChildren(...shown.slice(0, MAX_OWNERS).map((o) => ownerSection(...o)));
  const listed = new Set(shown.flatMap(([level, name]) => [level === "organisation" ? `orgs/${name}/` : level === "user" ? `users/${name}/` : "default/"]));
  const elsewhere = (inv.problems || []).filter((p) => ![...listed].some((prefix) => p.path.startsWith(prefix)));
  $("fixture-problems").replaceChildren(...elsewhere.map((p) => el("li", { text: `${p.path}: ${p.reason}` })));
}

async function loadInventory(force) {
  try {
    const inv = await api("GET", "/fixtures");
    const text = JSON.stringify(inv);
    if (force || text !== state.inventoryText) {
      state.inventory = inv;
      state.inventoryText = text;
      drawOwners();
    }
  } catch (failure) {
    $("fixture-summary").textContent = failure.message;
  }
}

function recolour() {
  for (const node of document.querySelectorAll(".side")) {
    const old = node.querySelector(".overlay");
    if (old) old.replaceWith(overlay(node.dataset.key === "back" ? "back" : "front"));
  }
}

// ------------------------------------------------------------------ traffic

function statusClass(status) {
  if (typeof status !== "number") return "status-broken";
  if (status >= 500) return "status-5xx";
  if (status >= 400) return "status-4xx";
  return "status-ok";
}

// An upstream answer's verdict (docs/upstream.md): "pass", the failed rule ids, or the upstream's error.
function conformanceText(upstream) {
  if (!upstream) return "";
  if (upstream.error) return upstream.error;
  if (!upstream.conformance) return `upstream ${upstream.status}`;
  return upstream.conformance.failed.length ? upstream.conformance.failed.join(" ") : "pass";
}

function evidenceText(upstream) {
  const evidence = upstream?.conformance?.evidence ?? {};
  return Object.entries(evidence).map(([rule, why]) => `${rule}: ${why}`).join("\n");
}

async function loadJournal() {
  if ($("pause").checked) return;
  try {
    const data = await api("GET", `/requests?limit=${JOURNAL_ROWS}`);
    const rows = data.requests.map((r) =>
      el(
        "tr",
        { class: statusClass(r.status) },
        el("td", { text: r.time.replace("T", " ").replace("+00:00", "") }),
        el("td", { class: "mono", text: r.contentId ?? "" }),
        el("td", { text: r.user ?? "" }),
        el("td", { class: "status", text: String(r.status) }),
        el("td", { class: "fault", text: r.fault ?? "" }),
        el("td", { text: r.resolved ?? "" }),
        el("td", { class: "conformance", text: conformanceText(r.upstream), title: evidenceText(r.upstream) }),
        el("td", { class: "number", text: String(r.latencyMs) }),
      ),
    );
    $("journal").tBodies[0].replaceChildren(...rows);
    $("journal-summary").textContent = `${rows.length} shown, refreshed ${new Date().toLocaleTimeString()}`;
  } catch (failure) {
    $("journal-summary").textContent = failure.message;
  }
}

// ------------------------------------------------------------------ faults

function describeMatch(match) {
  if (!match) return "every request";
  const parts = [];
  if (match.use_case && match.use_case !== "any") parts.push(match.use_case);
  if (match.id) parts.push(match.id);
  for (const id of match.ids || []) parts.push(id);
  if (match.pattern) parts.push(match.pattern);
  for (const p of match.patterns || []) parts.push(p);
  return parts.join(", ") || "every request";
}

function describeEffect(spec) {
  const { name, match, ...rest } = spec;
  return Object.entries(rest)
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join("; ");
}

function describeWindow(window) {
  // the server says whether a rule with a time window is in force, and for how long
  if (!window) return "";
  const left = window.changesInSeconds;
  if (window.active) return left === null ? " (in force)" : ` (in force, ${Math.ceil(left)} s left)`;
  return left === null ? " (window over)" : ` (not in force, starts in ${Math.ceil(left)} s)`;
}

async function loadRules(force) {
  try {
    const data = await api("GET", "/rules");
    const text = JSON.stringify(data);
    if (!force && text === state.rulesText) return;
    state.rulesText = text;
    const rows = data.rules.map((spec) =>
      el(
        "tr",
        { "data-rule": spec.name },
        el("td", { class: "mono", text: spec.name }),
        el("td", { class: "mono", text: describeMatch(spec.match) }),
        el("td", { class: "mono", text: describeEffect(spec) + describeWindow(data.windows?.[spec.name]) }),
        el("td", {}, el("button", { type: "button", text: "Remove", onclick: () => removeRule(spec.name) })),
      ),
    );
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No rules: every answer is the real one." })));
    $("rules").tBodies[0].replaceChildren(...rows);
  } catch (failure) {
    state.rulesText = "";
    $("rules").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "muted", text: failure.message })));
  }
}

function ruleFromForm() {
  const effect = $("rule-effect").value;
  const spec = {};
  const name = $("rule-name").value.trim();
  if (name) spec.name = name;
  const match = {};
  if ($("rule-use-case").value !== "any") match.use_case = $("rule-use-case").value;
  const id = $("rule-id").value.trim();
  if (id) match.id = id;
  if (Object.keys(match).length) spec.match = match;
  if (effect === "delay") spec.delay = `${$("rule-delay").value || 0}ms`;
  else if (effect === "status") spec.outcome = Number($("rule-status").value);
  else if (effect === "payload") spec.outcome = $("rule-payload").value;
  else if (effect === "connection") spec.outcome = $("rule-connection").value;
  else spec.outcome = "hang";
  return spec;
}

async function addRule(event) {
  event.preventDefault();
  $("rule-error").textContent = "";
  try {
    await api("POST", "/rules", ruleFromForm());
    $("rule-name").value = "";
    await loadRules(true);
  } catch (failure) {
    $("rule-error").textContent = "Not added: " + failure.message;
  }
}

async function removeRule(name) {
  $("rule-error").textContent = "";
  try {
    await api("DELETE", "/rules/" + encodeURIComponent(name));
  } catch (failure) {
    $("rule-error").textContent = "Not removed: " + failure.message;
  }
  await loadRules(true);
}

function showEffectInputs() {
  const effect = $("rule-effect").value;
  for (const label of document.querySelectorAll("[data-effect]")) label.hidden = label.dataset.effect !== effect;
}

// ------------------------------------------------------------------ the conformance report

// GET /__admin/report is a whole page. Without a token the link opens it; with one, the page
// fetches it with the token (a link cannot send a header) and opens what came as a blob: URL.
async function openReport(event) {
  if (!state.token) return;
  event.preventDefault();
  const opened = window.open("", "_blank");
  try {
    const response = await fetch(ADMIN + "/report", {
      headers: { Authorization: "Bearer " + state.token },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`the report: HTTP ${response.status}`);
    const url = URL.createObjectURL(new Blob([await response.text()], { type: "text/html" }));
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    if (opened) opened.location.href = url;
    else window.location.href = url;
  } catch (failure) {
    if (opened) opened.close();
    showAccess(0, { message: failure.message });
  }
}

// ------------------------------------------------------------------ wiring

function refreshAll() {
  loadInventory(true);
  loadJournal();
  loadRules(true);
}

function start() {
  $("token").value = state.token;
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    refreshAll();
  });
  for (const id of ["colour-front", "colour-back"]) $(id).addEventListener("change", recolour);
  for (const id of ["text-name", "text-issuer"]) $(id).addEventListener("input", recolour);
  $("overlay-form").addEventListener("submit", (event) => event.preventDefault());
  $("resolve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const contentId = $("resolve-id").value.trim();
    previewInto($("resolved"), { contentId });
    explainInto($("explained"), contentId);
  });
  $("filter").addEventListener("input", drawOwners);
  $("reload-fixtures").addEventListener("click", () => loadInventory(true));
  $("clear-journal").addEventListener("click", async () => {
    await api("DELETE", "/requests").catch(() => null);
    loadJournal();
  });
  $("report-link").addEventListener("click", openReport);
  $("rule-effect").addEventListener("change", showEffectInputs);
  $("rule-form").addEventListener("submit", addRule);
  showEffectInputs();
  refreshAll();
  setInterval(loadJournal, 1000);
  setInterval(() => loadRules(false), 2000);
  setInterval(() => loadInventory(false), 5000);
}

start();
