// The finance page of mpospay-gateway. Plain JavaScript, no framework, no build step.
// Every value from the API is put into the page with textContent (never as HTML).
"use strict";

(() => {
  const KEY_STORAGE = "mpospay.financeKey";
  const ZONE = "Asia/Jakarta";
  const PAGE_SIZE = 50;

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- formatting

  /** `Rp 305.550` (dots between thousands, no decimals). */
  function rupiah(value) {
    if (value === null || value === undefined || value === "") return "—";
    const n = Number(value);
    if (!Number.isFinite(n)) return String(value);
    const digits = String(Math.trunc(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
    return (n < 0 ? "−Rp " : "Rp ") + digits;
  }

  function integer(value) {
    if (value === null || value === undefined) return "—";
    return String(Math.trunc(Number(value))).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  }

  const timeParts = new Intl.DateTimeFormat("en-GB", {
    timeZone: ZONE,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });

  function partsOf(date) {
    const parts = {};
    for (const p of timeParts.formatToParts(date)) parts[p.type] = p.value;
    return parts;
  }

  /** `2026-11-27 14:30:25` in Asia/Jakarta. */
  function jakartaTime(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const p = partsOf(date);
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  }

  /** Today's business day in Asia/Jakarta, `YYYY-MM-DD`. */
  function jakartaToday() {
    const p = partsOf(new Date());
    return `${p.year}-${p.month}-${p.day}`;
  }

  function longDate(ymd) {
    const [y, m, d] = ymd.split("-").map(Number);
    const date = new Date(Date.UTC(y, m - 1, d, 12));
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: "UTC",
      weekday: "long",
      day: "numeric",
      month: "long",
      year: "numeric",
    }).format(date);
  }

  const LABELS = {
    inquiry: "Inquiry",
    payment: "Payment",
    purchase: "Purchase",
    succeeded: "Succeeded",
    failed: "Failed",
    pending: "Pending",
    review: "Review",
  };
  const label = (value) => LABELS[value] || String(value ?? "—");

  // ---------------------------------------------------------------- DOM helpers

  /** Makes an element; string children become text nodes, never HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function badge(status) {
    return el("span", { class: `badge badge-${String(status).replace(/[^a-z]/g, "")}` }, label(status));
  }

  function showAlert(node, message) {
    node.replaceChildren();
    if (!message) {
      node.hidden = true;
      return;
    }
    if (message instanceof Node) node.append(message);
    else node.textContent = message;
    node.hidden = false;
  }

  function setBusy(button, busy) {
    button.disabled = busy;
    button.classList.toggle("busy", busy);
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  /**
   * Fetches `path` with the Bearer key. `what` completes "This key may not …" for a 403.
   * Resolves with the Response (ok) or throws an ApiError with a message for people.
   */
  async function request(path, what, key = apiKey()) {
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: `Bearer ${key}`, Accept: "application/json, text/csv" },
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, "network", `Could not reach the gateway (${error.message}).`);
    }
    if (response.ok) return response;

    let code = "";
    let detail = "";
    try {
      const body = await response.json();
      if (body && body.error) {
        code = String(body.error.code || "");
        detail = String(body.error.message || "");
        if (body.error.upstream) {
          detail += ` Upstream ${body.error.upstream.code}: ${body.error.upstream.description}.`;
        }
      }
    } catch (_) {
      // Not JSON: the status says enough.
    }
    const status = response.status;
    let message;
    if (status === 401) {
      message = "This API key is not valid or has been revoked (401). Sign out and enter a finance key.";
    } else if (status === 403) {
      message = `This key may not ${what} (403). The finance page needs a finance key.`;
    } else if (status === 404 && code === "not_found") {
      message = `Not found (404)${detail ? ": " + detail : "."}`;
    } else {
      message = `Could not ${what}: ${detail || response.statusText || "error"} (${status}${code ? ", " + code : ""}).`;
    }
    throw new ApiError(status, code, message);
  }

  async function getJson(path, what) {
    const response = await request(path, what);
    return response.json();
  }

  // ---------------------------------------------------------------- sign in / out

  async function signIn(event) {
    event.preventDefault();
    const input = $("api-key");
    const key = input.value.trim();
    const error = $("signin-error");
    if (!key) {
      showAlert(error, "Enter an API key.");
      input.focus();
      return;
    }
    const button = $("signin-submit");
    setBusy(button, true);
    showAlert(error, null);
    try {
      // Operators may search their own transactions, but only finance (or admin) keys may read
      // reports and export: ask for today's report before keeping the key.
      await request(`/v1/reports/daily?date=${jakartaToday()}`, "read reports", key);
      sessionStorage.setItem(KEY_STORAGE, key);
      input.value = "";
      enterApp();
    } catch (e) {
      showAlert(error, e.message);
    } finally {
      setBusy(button, false);
    }
  }

  function signOut() {
    sessionStorage.removeItem(KEY_STORAGE);
    state.cursor = null;
    state.rows = 0;
    $("transactions-body").replaceChildren();
    $("report-body").replaceChildren();
    $("report-content").hidden = true;
    for (const id of ["transactions-error", "report-error", "signin-error"]) showAlert($(id), null);
    if ($("detail").open) $("detail").close();
    showSignIn();
  }

  function showSignIn() {
    $("app-view").hidden = true;
    $("session-bar").hidden = true;
    $("signin-view").hidden = false;
    $("api-key").focus();
  }

  function enterApp() {
    $("signin-view").hidden = true;
    $("app-view").hidden = false;
    $("session-bar").hidden = false;
    if (!$("report-date").value) $("report-date").value = jakartaToday();
    selectTab("transactions");
    loadBalance();
    search();
  }

  // ---------------------------------------------------------------- balance

  async function loadBalance() {
    const value = $("balance-value");
    const meta = $("balance-meta");
    const box = $("balance");
    box.classList.remove("balance-error");
    value.textContent = "…";
    meta.textContent = "";
    try {
      const body = await getJson("/v1/balance", "read the balance");
      value.textContent = rupiah(body.balance);
      meta.textContent = `checked ${jakartaTime(body.checkedAt).slice(11, 16)} WIB`;
      box.title = `Checked at ${jakartaTime(body.checkedAt)} WIB`;
    } catch (e) {
      box.classList.add("balance-error");
      value.textContent = "unavailable";
      meta.textContent = "";
      box.title = e.message;
    }
  }

  // ---------------------------------------------------------------- tabs

  function selectTab(name) {
    for (const tab of ["transactions", "report", "reconciliation"]) {
      const selected = tab === name;
      $(`tab-${tab}`).setAttribute("aria-selected", String(selected));
      $(`panel-${tab}`).hidden = !selected;
    }
    if (name === "report" && $("report-content").hidden && $("report-error").hidden) {
      loadReport();
    }
    if (name === "reconciliation" && $("recon-content").hidden && $("recon-error").hidden) {
      loadReconciliation();
    }
  }

  // ---------------------------------------------------------------- search

  // `generation` changes with every new search: an answer to an older one is dropped.
  const state = { cursor: null, rows: 0, query: "", generation: 0 };

  /** The filters of the form as a query string (empty values left out). */
  function filterQuery() {
    const params = new URLSearchParams();
    const form = new FormData($("filters"));
    for (const name of ["type", "status", "product", "billNumber", "from", "to"]) {
      const value = String(form.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    return params;
  }

  async function search(event) {
    if (event) event.preventDefault();
    const params = filterQuery();
    const from = params.get("from");
    const to = params.get("to");
    if (from && to && from > to) {
      showAlert($("transactions-error"), "The From date is after the To date.");
      return;
    }
    state.query = params.toString();
    state.generation += 1;
    state.cursor = null;
    state.rows = 0;
    $("transactions-body").replaceChildren();
    await loadPage($("search"));
  }

  async function loadMore() {
    await loadPage($("load-more"));
  }

  async function loadPage(button) {
    const generation = state.generation;
    const params = new URLSearchParams(state.query);
    params.set("limit", String(PAGE_SIZE));
    if (state.cursor) params.set("cursor", state.cursor);
    setBusy(button, true);
    showAlert($("transactions-error"), null);
    $("transactions-table").classList.add("loading");
    try {
      const body = await getJson(`/v1/transactions?${params}`, "read transactions");
      if (generation !== state.generation) return;
      const rows = Array.isArray(body.data) ? body.data : [];
      const tbody = $("transactions-body");
      for (const t of rows) tbody.append(transactionRow(t));
      state.rows += rows.length;
      state.cursor = body.nextCursor || null;
      if (state.rows === 0) {
        tbody.append(
          el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No transactions match these filters."))
        );
      }
    } catch (e) {
      if (generation === state.generation) showAlert($("transactions-error"), e.message);
    } finally {
      setBusy(button, false);
      if (generation === state.generation) {
        $("transactions-table").classList.remove("loading");
        $("load-more").hidden = !state.cursor;
        const more = state.cursor ? " · more available" : "";
        $("transactions-count").textContent =
          state.rows === 0 ? "" : `${integer(state.rows)} transaction${state.rows === 1 ? "" : "s"} shown${more}`;
      }
    }
  }

  function transactionRow(t) {
    const row = el(
      "tr",
      { class: "clickable", tabindex: 0, "data-id": t.id, "data-trx-id": t.trxId, title: "Show details" },
      el("td", { class: "nowrap mono-num" }, jakartaTime(t.createdAt)),
      el("td", {}, label(t.type)),
      el("td", {}, badge(t.status)),
      el("td", { class: "mono" }, t.product ?? "—"),
      el("td", { class: "mono wrap-anywhere" }, t.billNumber ?? "—"),
      el("td", {}, t.customerName || "—"),
      el("td", { class: "num nowrap" }, rupiah(t.total)),
      el("td", { class: "mono" }, t.trxId ?? "—")
    );
    const open = () => openDetail(t.id);
    row.addEventListener("click", open);
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        open();
      }
    });
    return row;
  }

  function resetFilters() {
    $("filters").reset();
    search();
  }

  // ---------------------------------------------------------------- CSV export

  async function downloadCsv() {
    const button = $("download-csv");
    const params = filterQuery();
    setBusy(button, true);
    showAlert($("transactions-error"), null);
    try {
      const response = await request(`/v1/transactions/export.csv?${params}`, "export transactions");
      const blob = await response.blob();
      const url = URL.createObjectURL(new Blob([blob], { type: "text/csv" }));
      const link = el("a", { href: url, download: `transactions-${jakartaToday()}.csv`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      showAlert($("transactions-error"), e.message);
    } finally {
      setBusy(button, false);
    }
  }

  // ---------------------------------------------------------------- detail

  let detailRequest = 0;

  async function openDetail(id) {
    const dialog = $("detail");
    const content = $("detail-content");
    const mine = ++detailRequest;
    $("detail-title").textContent = "Transaction";
    $("detail-id").textContent = id;
    showAlert($("detail-error"), null);
    content.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    if (!dialog.open) dialog.showModal();
    try {
      const t = await getJson(`/v1/transactions/${encodeURIComponent(id)}`, "read transactions");
      if (mine !== detailRequest) return;
      renderDetail(t);
    } catch (e) {
      if (mine !== detailRequest) return;
      content.replaceChildren();
      showAlert($("detail-error"), e.message);
    }
  }

  function field(name, value, opts = {}) {
    if (value === null || value === undefined || value === "") return null;
    return el(
      "div",
      { class: opts.wide ? "kv kv-wide" : "kv" },
      el("dt", {}, name),
      el("dd", { class: opts.mono ? "mono wrap-anywhere" : "wrap-anywhere" }, value)
    );
  }

  function renderDetail(t) {
    $("detail-title").replaceChildren(
      `${label(t.type)} `,
      el("span", { class: "mono" }, t.trxId || ""),
      " ",
      badge(t.status)
    );
    $("detail-id").textContent = `id ${t.id}`;

    const sections = [];

    // Money first: what finance staff look for.
    sections.push(
      el(
        "div",
        { class: "money" },
        el("div", {}, el("div", { class: "stat-label" }, "Amount"), el("div", { class: "money-value" }, rupiah(t.amount))),
        el("div", {}, el("div", { class: "stat-label" }, "Admin fee"), el("div", { class: "money-value" }, rupiah(t.adminFee))),
        el("div", { class: "money-total" }, el("div", { class: "stat-label" }, "Total"), el("div", { class: "money-value" }, rupiah(t.total)))
      )
    );

    let inquiryLink = null;
    if (t.inquiryId) {
      inquiryLink = el("button", { type: "button", class: "link mono" }, t.inquiryId);
      inquiryLink.addEventListener("click", () => openDetail(t.inquiryId));
    }
    const result = t.result ? `${t.result.code} ${t.result.description || ""}`.trim() : null;
    sections.push(
      el(
        "dl",
        { class: "grid-dl" },
        field("Type", label(t.type)),
        field("Status", badge(t.status)),
        field("Final", t.final === undefined ? null : t.final ? "yes" : "no"),
        field("Result", result, { mono: true }),
        field("Error code", t.errorCode, { mono: true }),
        field("Review reason", t.reviewReason, { wide: true }),
        field("Product", t.product, { mono: true }),
        field("Bill number", t.billNumber, { mono: true }),
        field("Customer name", t.customerName),
        field("trxId", t.trxId, { mono: true }),
        field("Retrieval", t.retrieval, { mono: true }),
        field("Payment code", t.paymentCode, { mono: true }),
        field("Inquiry", inquiryLink),
        field("Sheets", t.sheets === null || t.sheets === undefined ? null : String(t.sheets)),
        field("Balance after", t.balanceAfter === null || t.balanceAfter === undefined ? null : rupiah(t.balanceAfter)),
        field("Advice attempts", t.adviceAttempts === undefined ? null : String(t.adviceAttempts)),
        field("Created (WIB)", t.createdAt ? jakartaTime(t.createdAt) : null),
        field("Updated (WIB)", t.updatedAt ? jakartaTime(t.updatedAt) : null),
        field("Completed (WIB)", t.completedAt ? jakartaTime(t.completedAt) : null),
        field("Expires (WIB)", t.expiresAt ? jakartaTime(t.expiresAt) : null),
        field("Info 1", t.info1, { wide: true }),
        field("Info 2", t.info2, { wide: true }),
        field("Info 3", t.info3, { wide: true })
      )
    );

    // Receipt.
    const receipt = Array.isArray(t.receipt) ? t.receipt : [];
    sections.push(el("h3", {}, "Receipt"));
    if (receipt.length === 0) {
      sections.push(el("p", { class: "muted" }, "No receipt lines."));
    } else {
      sections.push(
        el(
          "table",
          { class: "receipt", id: "detail-receipt" },
          el(
            "tbody",
            {},
            receipt.map((line) =>
              el("tr", {}, el("th", { scope: "row" }, line.label ?? ""), el("td", {}, line.value ?? ""))
            )
          )
        )
      );
    }

    // The printable receipt (GET /v1/transactions/{id}/receipt): payments and purchases.
    if (t.type === "payment" || t.type === "purchase") {
      sections.push(printReceiptView(t.id));
    }

    // Upstream exchanges.
    const exchanges = Array.isArray(t.exchanges) ? t.exchanges : [];
    sections.push(el("h3", {}, `Upstream exchanges (${exchanges.length})`));
    if (exchanges.length === 0) {
      sections.push(el("p", { class: "muted" }, "No upstream exchanges recorded."));
    } else {
      const list = el("div", { class: "exchanges", id: "detail-exchanges" });
      exchanges.forEach((x, index) => list.append(exchangeView(x, index === exchanges.length - 1)));
      sections.push(list);
    }

    $("detail-content").replaceChildren(...sections.filter(Boolean));
  }

  /** "Print receipt": fetches the thermal-printer text at the chosen width, shows it, prints it. */
  function printReceiptView(id) {
    const width = el(
      "select",
      { id: "print-receipt-width", "aria-label": "Receipt width" },
      el("option", { value: "32" }, "32 columns"),
      el("option", { value: "48" }, "48 columns")
    );
    const paper = el("pre", { class: "printable-receipt", id: "print-receipt", hidden: "" });
    const error = el("div", { class: "alert", role: "alert", hidden: "" });
    const print = el("button", { type: "button", class: "btn", id: "print-receipt-print", hidden: "" }, "Print");
    const show = el("button", { type: "button", class: "btn btn-quiet", id: "print-receipt-show" }, "Print receipt");
    async function load() {
      showAlert(error, null);
      setBusy(show, true);
      try {
        const response = await request(
          `/v1/transactions/${encodeURIComponent(id)}/receipt?width=${width.value}`,
          "read this receipt"
        );
        paper.textContent = await response.text();
        paper.hidden = false;
        print.hidden = false;
      } catch (e) {
        showAlert(error, e.message);
      } finally {
        setBusy(show, false);
      }
    }
    show.addEventListener("click", load);
    width.addEventListener("change", () => {
      if (!paper.hidden) load();
    });
    print.addEventListener("click", () => window.print());
    return el(
      "section",
      { class: "print-receipt" },
      el("h3", {}, "Print receipt"),
      el("div", { class: "print-receipt-controls" }, width, show, print),
      error,
      paper
    );
  }

  function pretty(value) {
    if (value === null || value === undefined) return "(no response)";
    if (typeof value === "string") return value;
    return JSON.stringify(value, null, 2);
  }

  function exchangeView(x, open) {
    const ok = x.outcome === "answered";
    const summary = el(
      "summary",
      {},
      el("span", { class: "exchange-type" }, x.type || "exchange"),
      el("span", { class: "mono" }, `trxId ${x.trxId ?? "—"}`),
      el("span", { class: `chip ${ok ? "chip-ok" : "chip-warn"}` }, String(x.outcome || "—").replace(/_/g, " ")),
      x.resultCode ? el("span", { class: "chip mono" }, `result ${x.resultCode}`) : null,
      x.httpStatus ? el("span", { class: "chip mono" }, `HTTP ${x.httpStatus}`) : null,
      el("span", { class: "muted" }, `${integer(x.latencyMs)} ms`),
      el("span", { class: "muted exchange-time" }, `${jakartaTime(x.createdAt)} WIB`)
    );
    const body = el(
      "div",
      { class: "exchange-body" },
      el("div", {}, el("div", { class: "pre-label" }, "Request"), el("pre", {}, pretty(x.request))),
      el("div", {}, el("div", { class: "pre-label" }, "Response"), el("pre", {}, pretty(x.response))),
      x.requestId ? el("div", { class: "muted small" }, `Request id ${x.requestId}`) : null
    );
    return el("details", { class: "exchange", open }, summary, body);
  }

  // ---------------------------------------------------------------- daily report

  async function loadReport(event) {
    if (event) event.preventDefault();
    const input = $("report-date");
    if (!input.value) input.value = jakartaToday();
    const date = input.value;
    const button = $("report-show");
    setBusy(button, true);
    showAlert($("report-error"), null);
    try {
      const report = await getJson(`/v1/reports/daily?date=${encodeURIComponent(date)}`, "read reports");
      renderReport(report);
    } catch (e) {
      $("report-content").hidden = true;
      showAlert($("report-error"), e.message);
    } finally {
      setBusy(button, false);
    }
  }

  function renderReport(report) {
    const zone = report.timeZone || ZONE;
    $("report-title").textContent = `${longDate(report.date || $("report-date").value)} · business day in ${zone}`;
    $("report-inquiries").textContent = integer(report.inquiries ?? 0);
    const totals = report.totals || {};
    $("report-count").textContent = integer(totals.count ?? 0);
    $("report-amount").textContent = rupiah(totals.amount ?? 0);
    $("report-fee").textContent = rupiah(totals.adminFee ?? 0);
    $("report-total").textContent = rupiah(totals.total ?? 0);
    $("report-foot-count").textContent = integer(totals.count ?? 0);
    $("report-foot-amount").textContent = rupiah(totals.amount ?? 0);
    $("report-foot-fee").textContent = rupiah(totals.adminFee ?? 0);
    $("report-foot-total").textContent = rupiah(totals.total ?? 0);

    const groups = Array.isArray(report.groups) ? report.groups : [];
    const tbody = $("report-body");
    tbody.replaceChildren();
    for (const g of groups) {
      tbody.append(
        el(
          "tr",
          { "data-type": g.type, "data-product": g.product, "data-status": g.status },
          el("td", {}, label(g.type)),
          el("td", { class: "mono" }, g.product ?? "—"),
          el("td", {}, badge(g.status)),
          el("td", { class: "num" }, integer(g.count)),
          el("td", { class: "num nowrap" }, rupiah(g.amount)),
          el("td", { class: "num nowrap" }, rupiah(g.adminFee)),
          el("td", { class: "num nowrap" }, rupiah(g.total))
        )
      );
    }
    if (groups.length === 0) {
      tbody.append(
        el("tr", { class: "empty" }, el("td", { colspan: 7 }, "No payments or purchases on this day."))
      );
    }
    $("report-content").hidden = false;
  }

  // ---------------------------------------------------------------- reconciliation

  async function loadReconciliation(event) {
    if (event) event.preventDefault();
    const input = $("recon-date");
    if (!input.value) input.value = jakartaToday();
    const date = input.value;
    const button = $("recon-show");
    setBusy(button, true);
    showAlert($("recon-error"), null);
    try {
      const report = await getJson(`/v1/reports/reconciliation?date=${encodeURIComponent(date)}`, "read reports");
      renderReconciliation(report);
    } catch (e) {
      $("recon-content").hidden = true;
      showAlert($("recon-error"), e.message);
    } finally {
      setBusy(button, false);
    }
  }

  /** A link that opens the transaction detail, or a dash when there is no transaction. */
  function transactionLink(id) {
    if (!id) return el("span", { class: "muted" }, "—");
    const link = el("button", { type: "button", class: "link mono", "data-transaction": id }, String(id).slice(0, 13) + "…");
    link.addEventListener("click", () => openDetail(id));
    return link;
  }

  function renderReconciliation(report) {
    const zone = report.timeZone || ZONE;
    $("recon-title").textContent = `${longDate(report.date || $("recon-date").value)} · business day in ${zone}`;
    $("recon-badge").replaceChildren(
      report.balanced
        ? el("span", { class: "badge badge-succeeded", id: "recon-balanced" }, "balanced")
        : el("span", { class: "badge badge-failed", id: "recon-balanced" }, "not balanced")
    );
    $("recon-opening").textContent = rupiah(report.openingBalance ?? 0);
    $("recon-closing").textContent = rupiah(report.closingBalance ?? 0);
    $("recon-succeeded").textContent = `${integer(report.succeededCount ?? 0)} · ${rupiah(report.succeededTotal ?? 0)}`;
    $("recon-unexplained").textContent = rupiah(report.unexplainedTotal ?? 0);
    $("recon-open").textContent = `${integer(report.pendingCount ?? 0)} / ${integer(report.reviewCount ?? 0)}`;

    const breaks = Array.isArray(report.unexplained) ? report.unexplained : [];
    const tbody = $("recon-body");
    tbody.replaceChildren();
    for (const b of breaks) {
      tbody.append(
        el(
          "tr",
          { class: "break-row" },
          el("td", { class: `num nowrap ${b.amount < 0 ? "negative" : "positive"}` }, signedRupiah(b.amount)),
          el("td", { class: "num nowrap" }, rupiah(b.fromBalance)),
          el("td", { class: "num nowrap" }, rupiah(b.toBalance)),
          el("td", {}, transactionLink(b.after)),
          el("td", {}, transactionLink(b.before))
        )
      );
    }
    if (breaks.length === 0) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "No unexplained movement: the chain is unbroken.")));
    }
    drawBalanceChart($("recon-chart"), report);
    $("recon-content").hidden = false;
  }

  function signedRupiah(value) {
    return value < 0 ? `− ${rupiah(-value)}` : `+ ${rupiah(value)}`;
  }

  const SVG = "http://www.w3.org/2000/svg";

  /** An SVG element; attribute values are set one by one, never parsed as markup. */
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /**
   * The balance over the day as a step line in upstream order (one step per point, starting
   * from the opening balance), with each break marked where it lies in the chain.
   */
  function drawBalanceChart(figure, report) {
    figure.replaceChildren();
    const points = Array.isArray(report.points) ? report.points : [];
    if (points.length === 0) {
      figure.append(el("figcaption", { class: "muted" }, "No balance known for this day."));
      return;
    }
    const values = [report.openingBalance ?? points[0].balance, ...points.map((p) => p.balance)];
    const width = 720, height = 220, left = 96, right = 12, top = 12, bottom = 28;
    let low = Math.min(...values), high = Math.max(...values);
    if (low === high) { low -= 1; high += 1; }
    const x = (i) => left + (i * (width - left - right)) / Math.max(values.length - 1, 1);
    const y = (v) => top + ((high - v) * (height - top - bottom)) / (high - low);

    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "balance-chart", role: "img" });
    chart.append(svg("title", {}, "Deposit balance over the day, in upstream order"));
    for (const v of [high, (high + low) / 2, low]) {
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "chart-grid" }));
      chart.append(svg("text", { x: left - 6, y: y(v) + 4, class: "chart-axis", "text-anchor": "end" }, rupiah(Math.round(v))));
    }
    const path = values.map((v, i) => `${i === 0 ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d: path, class: "chart-line" }));

    // The breaks come in chain order: each lies after the first value, from where the last one
    // was found, that equals its from balance.
    let marked = 0;
    let cursor = 0;
    for (const b of Array.isArray(report.unexplained) ? report.unexplained : []) {
      let i = cursor;
      while (i < values.length && values[i] !== b.fromBalance) i++;
      if (i >= values.length) continue;
      cursor = i + 1;
      const at = x(Math.min(i + 0.5, values.length - 1));
      const mark = svg("g", { class: "chart-break" },
        svg("title", {}, `Unexplained ${signedRupiah(b.amount)}`),
        svg("line", { x1: at, x2: at, y1: y(b.fromBalance), y2: y(b.toBalance) }),
        svg("circle", { cx: at, cy: y(b.toBalance), r: 4 }));
      chart.append(mark);
      marked++;
    }
    chart.setAttribute("data-breaks", String(marked));
    chart.append(svg("text", { x: left, y: height - 8, class: "chart-axis" }, "start of day"));
    chart.append(svg("text", { x: width - right, y: height - 8, class: "chart-axis", "text-anchor": "end" }, "end of day"));
    figure.append(chart);
  }

  // ---------------------------------------------------------------- start

  function start() {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("balance-refresh").addEventListener("click", loadBalance);
    $("filters").addEventListener("submit", search);
    $("reset-filters").addEventListener("click", resetFilters);
    $("load-more").addEventListener("click", loadMore);
    $("download-csv").addEventListener("click", downloadCsv);
    $("report-form").addEventListener("submit", loadReport);
    $("recon-form").addEventListener("submit", loadReconciliation);
    $("tab-reconciliation").addEventListener("click", () => selectTab("reconciliation"));
    $("tab-transactions").addEventListener("click", () => selectTab("transactions"));
    $("tab-report").addEventListener("click", () => selectTab("report"));
    $("detail-close").addEventListener("click", () => $("detail").close());
    // A click on the backdrop (outside the dialog box) closes it.
    $("detail").addEventListener("click", (event) => {
      if (event.target === $("detail")) $("detail").close();
    });
    $("report-date").value = jakartaToday();
    $("recon-date").value = jakartaToday();

    if (apiKey()) enterApp();
    else showSignIn();
  }

  start();
})();
