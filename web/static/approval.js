// The approval page: pending suggested links of the signed-in tenant, approved or rejected in place.
// Every value from the API reaches the page through textContent or an attribute, never as HTML.
"use strict";

(function () {
  const API = "/api/v1/suggested-links";
  const PAGE_SIZE = 20;
  const TOKEN_KEY = "integration-processors.review.token";

  const $ = (id) => document.getElementById(id);
  const state = { cursor: null, shown: 0, pending: 0, loading: false, serial: 0 };

  // --- small DOM helpers ------------------------------------------------------

  function el(tag, options, children) {
    const node = document.createElement(tag);
    const o = options || {};
    if (o.className) node.className = o.className;
    if (o.text !== undefined && o.text !== null) node.textContent = String(o.text);
    if (o.attrs) {
      for (const [name, value] of Object.entries(o.attrs)) node.setAttribute(name, String(value));
    }
    for (const child of children || []) {
      if (child) node.appendChild(child);
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function text(value) {
    if (value === undefined || value === null) return "";
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    try {
      return JSON.stringify(value);
    } catch (e) {
      return String(value);
    }
  }

  function percent(confidence) {
    const n = Number(confidence);
    return Number.isFinite(n) ? `${Math.round(n * 100)}%` : "?";
  }

  function when(iso) {
    if (!iso) return null;
    const date = new Date(iso);
    const label = Number.isNaN(date.getTime())
      ? text(iso)
      : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    return el("time", { text: label, attrs: { datetime: text(iso) } });
  }

  function targetLabel(item) {
    const name = text(item.targetName).trim();
    const kind = text(item.targetShardType) || "Shard";
    return name ? `${kind}: ${name}` : `${kind} ${text(item.targetShardId)}`;
  }

  function person(p) {
    if (p && typeof p === "object") {
      const name = text(p.name).trim();
      const email = text(p.email).trim();
      return name && email ? `${name} <${email}>` : name || email || text(p);
    }
    return text(p);
  }

  // --- the token: this tab only; tenant and user are the server's reading of it ---------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function claims(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return null;
    }
  }

  function signIn(raw) {
    const value = raw.trim().replace(/^bearer\s+/i, "");
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    showSignedIn();
    reload();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    show($("who"), false);
    show($("review"), false);
    $("items").replaceChildren();
    show($("sign-in"), true);
    const error = $("sign-in-error");
    error.textContent = message || "";
    show(error, Boolean(message));
    $("token").value = "";
    $("token").focus();
  }

  function showSignedIn() {
    const c = claims(token()) || {};
    const tenant = text(c.tid) || "?";
    const user = text(c.sub) || "?";
    $("who-text").textContent = `Signed in as ${user} (tenant ${tenant})`;
    show($("who"), true);
    show($("sign-in"), false);
    show($("sign-in-error"), false);
    show($("review"), true);
  }

  // --- the API ----------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, url, body) {
    const headers = { Authorization: `Bearer ${token() || ""}`, Accept: "application/json" };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let answer;
    try {
      answer = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, "network", "The server could not be reached. Try again.");
    }
    let doc = null;
    try {
      doc = await answer.json();
    } catch (e) {
      doc = null;
    }
    if (!answer.ok) {
      const error = (doc && doc.error) || {};
      throw new ApiError(answer.status, text(error.code), text(error.message) || answer.statusText);
    }
    return doc;
  }

  function refused(error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(`Your sign-in was refused (${error.message}). Please sign in again.`);
      return true;
    }
    return false;
  }

  // --- the list -----------------------------------------------------------------

  function listStatus(message) {
    $("list-status").textContent = message;
  }

  function summary() {
    if (state.shown === 0) return "Nothing is waiting for review.";
    const waiting = `${state.pending} waiting`;
    const decided = state.shown - state.pending;
    return decided ? `${waiting}, ${decided} decided on this page.` : `${waiting}.`;
  }

  async function load() {
    if (state.loading) return;
    state.loading = true;
    $("load-more").disabled = true;
    listStatus("Loading…");
    const params = new URLSearchParams({ status: "pending_review", limit: String(PAGE_SIZE) });
    if (state.cursor) params.set("cursor", state.cursor);
    try {
      const page = await api("GET", `${API}?${params}`);
      const items = Array.isArray(page && page.items) ? page.items : [];
      for (const item of items) $("items").appendChild(renderItem(item));
      state.shown += items.length;
      state.pending += items.length;
      state.cursor = (page && page.nextCursor) || null;
      show($("load-more"), Boolean(state.cursor));
      listStatus(summary());
    } catch (error) {
      if (!refused(error)) listStatus(`Could not load the suggestions: ${error.message}`);
    } finally {
      state.loading = false;
      $("load-more").disabled = false;
    }
  }

  function reload() {
    state.cursor = null;
    state.shown = 0;
    state.pending = 0;
    $("items").replaceChildren();
    show($("load-more"), false);
    load();
  }

  function evidenceLine(e) {
    const detail = text(e && e.detail).trim();
    if (detail) return detail;
    const rule = text(e && e.rule) || "rule";
    const field = text(e && e.field);
    const value = text(e && e.value);
    if (field && value) return `${rule}: ${field} is ${value}`;
    return field || value ? `${rule}: ${field || value}` : rule;
  }

  function evidenceList(evidence, className) {
    const list = el("ul", { className });
    for (const e of Array.isArray(evidence) ? evidence : []) {
      list.appendChild(el("li", { text: evidenceLine(e) }));
    }
    return list.childElementCount ? list : null;
  }

  function renderItem(item) {
    state.serial += 1;
    const reasonId = `reason-${state.serial}`;
    const source = (item && item.sourceSummary) || {};
    const subject = text(source.subject).trim();
    const participants = Array.isArray(source.participants) ? source.participants.map(person) : [];

    const head = el("header", { className: "source" }, [
      el("h3", { className: "subject", text: subject || "(no subject)" }),
      el("p", { className: "meta" }, [
        el("span", { className: "kind", text: text(item.sourceShardType) || "Communication" }),
        when(source.occurredAt),
      ]),
      participants.length
        ? el("p", { className: "participants", text: participants.join(", ") })
        : null,
    ]);

    const proposal = el("div", { className: "proposal" }, [
      el("p", { className: "target" }, [
        el("span", { className: "label", text: "Link to " }),
        el("strong", { className: "target-name", text: targetLabel(item) }),
      ]),
      el("p", { className: "confidence" }, [
        el("meter", { attrs: { min: 0, max: 1, value: Number(item.confidence) || 0 } }),
        el("span", { className: "percent", text: percent(item.confidence) }),
        el("span", { className: "method", text: text(item.method) }),
      ]),
      text(item.reason).trim() ? el("p", { className: "why", text: text(item.reason) }) : null,
      evidenceList(item.evidence, "evidence"),
    ]);

    const alternatives = Array.isArray(item.alternatives) ? item.alternatives : [];
    const others = alternatives.length
      ? el("div", { className: "alternatives" }, [
          el("h4", { text: "Alternatives" }),
          el(
            "ul",
            {},
            alternatives.map((a) =>
              el("li", {}, [
                el("span", { className: "target-name", text: targetLabel(a || {}) }),
                el("span", { className: "percent", text: percent(a && a.confidence) }),
                el("span", { className: "method", text: text(a && a.method) }),
                evidenceList(a && a.evidence, "evidence"),
              ]),
            ),
          ),
        ])
      : null;

    const reason = el("input", {
      className: "reason",
      attrs: { id: reasonId, type: "text", maxlength: 500, autocomplete: "off" },
    });
    const approve = el("button", { className: "approve primary", text: "Approve", attrs: { type: "button" } });
    const reject = el("button", { className: "reject", text: "Reject", attrs: { type: "button" } });
    const outcome = el("p", { className: "outcome", attrs: { role: "status", "aria-live": "polite" } });
    const actions = el("div", { className: "actions" }, [
      el("label", { text: "Reason (optional)", attrs: { for: reasonId } }),
      reason,
      el("div", { className: "buttons" }, [approve, reject]),
    ]);

    const card = el("li", { className: "suggestion pending" }, [
      el("article", {}, [head, proposal, others, actions, outcome]),
    ]);
    card.dataset.suggestionId = text(item.id);
    card.dataset.status = "pending_review";

    const decide = async (verb) => {
      approve.disabled = true;
      reject.disabled = true;
      reason.disabled = true;
      outcome.className = "outcome";
      outcome.textContent = verb === "approve" ? "Approving…" : "Rejecting…";
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      try {
        const decided = await api("POST", `${API}/${encodeURIComponent(text(item.id))}/${verb}`, body);
        settle(card, actions, outcome, decided || {});
      } catch (error) {
        if (error instanceof ApiError && error.status === 409) {
          conflict(card, actions, outcome, error.message);
          return;
        }
        approve.disabled = false;
        reject.disabled = false;
        reason.disabled = false;
        outcome.className = "outcome error";
        if (error instanceof ApiError && error.status === 401) {
          outcome.textContent = "Your sign-in is no longer valid. Sign in again, then retry.";
          refused(error);
        } else if (error instanceof ApiError && error.status === 404) {
          outcome.textContent = "This suggestion no longer exists for your tenant.";
        } else {
          outcome.textContent = `Could not save the decision: ${error.message}`;
        }
      }
    };
    approve.addEventListener("click", () => decide("approve"));
    reject.addEventListener("click", () => decide("reject"));
    return card;
  }

  function settle(card, actions, outcome, decided) {
    const status = text(decided.status);
    const words = status === "approved" ? "Approved" : status === "rejected" ? "Rejected" : status;
    card.classList.remove("pending");
    card.classList.add("decided", status);
    card.dataset.status = status;
    actions.remove();
    outcome.className = "outcome done";
    const parts = [el("strong", { text: words })];
    if (decided.decidedBy) parts.push(el("span", { text: ` by ${text(decided.decidedBy)}` }));
    if (decided.decidedAt) parts.push(el("span", { text: " · " }), when(decided.decidedAt));
    if (text(decided.decisionReason).trim()) {
      parts.push(el("span", { className: "decision-reason", text: ` — “${text(decided.decisionReason)}”` }));
    }
    outcome.replaceChildren(...parts);
    state.pending = Math.max(0, state.pending - 1);
    listStatus(summary());
  }

  function conflict(card, actions, outcome, message) {
    card.classList.remove("pending");
    card.classList.add("decided", "conflict");
    card.dataset.status = "conflict";
    actions.remove();
    outcome.className = "outcome error";
    outcome.textContent = `Already decided: ${message}`;
    state.pending = Math.max(0, state.pending - 1);
    listStatus(summary());
  }

  // --- start --------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn($("token").value);
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    $("refresh").addEventListener("click", reload);
    $("load-more").addEventListener("click", load);
    if (token()) {
      showSignedIn();
      reload();
    } else {
      signOut("");
    }
  });
})();
