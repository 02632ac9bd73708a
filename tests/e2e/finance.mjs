// The finance page's journey in Debian's Chromium, driven by playwright-core. Started by
// tests/ui.rs against a real gateway it has filled with transactions; exits non-zero on failure.
//
// Environment: GATEWAY_URL, FINANCE_KEY, OPERATOR_KEY, PAYMENT_ID, PAYMENT_TRX_ID,
// PURCHASE_TRX_ID, REPORT_DATE (YYYY-MM-DD), TRANSACTION_COUNT, TOP_UP (a top-up of the deposit
// made that day outside the gateway, rupiah), SCREENSHOT and RECONCILIATION_SCREENSHOT (the
// README's PNGs), ARTIFACTS (a folder for the other screenshots), CHROMIUM (default
// /usr/bin/chromium).

import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`finance.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const base = env("GATEWAY_URL").replace(/\/$/, "");
const financeKey = env("FINANCE_KEY");
const operatorKey = env("OPERATOR_KEY");
const paymentId = env("PAYMENT_ID");
const paymentTrxId = env("PAYMENT_TRX_ID");
const purchaseTrxId = env("PURCHASE_TRX_ID");
const reportDate = env("REPORT_DATE");
const transactionCount = Number(env("TRANSACTION_COUNT"));
const topUp = Number(env("TOP_UP"));
const screenshot = env("SCREENSHOT");
const reconciliationScreenshot = env("RECONCILIATION_SCREENSHOT");
const artifacts = env("ARTIFACTS");
const executablePath = env("CHROMIUM", "/usr/bin/chromium");

// The whole journey must finish: a hung browser fails the test instead of blocking it.
const watchdog = setTimeout(() => {
  console.error("finance.mjs: the journey took longer than 150 s");
  process.exit(3);
}, 150_000);

const step = (text) => console.log(`• ${text}`);

function jakartaToday() {
  const parts = {};
  for (const p of new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Jakarta",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(new Date())) {
    parts[p.type] = p.value;
  }
  return `${parts.year}-${parts.month}-${parts.day}`;
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const problems = [];
let page;
try {
  const context = await browser.newContext({
    viewport: { width: 1360, height: 940 },
    deviceScaleFactor: 1,
    acceptDownloads: true,
    timezoneId: "Europe/London", // the page must show Jakarta time whatever the browser's zone
    locale: "en-GB",
  });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    const text = message.text();
    // 401/403 answers are expected below and Chromium logs them as resource errors.
    if (message.type() === "error" && !text.startsWith("Failed to load resource")) {
      problems.push(`console error: ${text}`);
    }
  });

  step("open /ui (redirects to /ui/) with its security headers");
  const response = await page.goto(`${base}/ui`);
  assert.equal(new URL(page.url()).pathname, "/ui/");
  assert.equal(response.status(), 200);
  const headers = response.headers();
  assert.match(headers["content-type"], /^text\/html/);
  assert.equal(headers["cache-control"], "no-cache");
  assert.match(headers["content-security-policy"], /default-src 'self'/);
  assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline/);
  await page.locator("#signin-view").waitFor({ state: "visible" });

  step("a wrong key is refused with 401");
  await page.fill("#api-key", "mpg_notarealkey_0000000000000000");
  await page.click("#signin-submit");
  await page.locator("#signin-error").filter({ hasText: "(401)" }).waitFor();

  step("an operator key is refused with 403");
  await page.fill("#api-key", operatorKey);
  await page.click("#signin-submit");
  const forbidden = page.locator("#signin-error").filter({ hasText: "(403)" });
  await forbidden.waitFor();
  console.log(`  says: ${await forbidden.textContent()}`);
  await page.screenshot({ path: join(artifacts, "finance-signin.png") });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused key is not kept");

  step("sign in with the finance key");
  await page.fill("#api-key", financeKey);
  await page.click("#signin-submit");
  await page.locator("#app-view").waitFor({ state: "visible" });
  assert.equal(await page.locator("#signin-view").isVisible(), false);
  const stored = await page.evaluate(() => ({
    session: Object.values({ ...sessionStorage }),
    local: localStorage.length,
  }));
  assert.deepEqual(stored.session, [financeKey], "the key is kept in sessionStorage");
  assert.equal(stored.local, 0, "nothing in localStorage");
  assert.equal(await page.inputValue("#api-key"), "", "the key field is cleared");

  step("the deposit balance shows in rupiah");
  await page.locator("#balance-value").filter({ hasText: /^Rp \d{1,3}(\.\d{3})*$/ }).waitFor();
  console.log(`  balance ${await page.textContent("#balance-value")}`);

  step("the first page of transactions loads, newest first, 50 rows, with load more");
  const rows = page.locator("#transactions-body tr.clickable");
  await rows.nth(49).waitFor();
  assert.equal(await rows.count(), 50);
  assert.equal(await rows.first().getAttribute("data-trx-id"), paymentTrxId, "newest first");
  await page.locator("#load-more").waitFor({ state: "visible" });

  step("load more fetches the rest with the cursor");
  await page.click("#load-more");
  await rows.nth(transactionCount - 1).waitFor();
  await page.locator("#load-more").waitFor({ state: "hidden" });
  assert.equal(await rows.count(), transactionCount);
  const trxIds = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.trxId));
  assert.equal(new Set(trxIds).size, transactionCount, "no row twice");

  step("search: payments of bill AF085713323054");
  await page.selectOption("#f-type", "payment");
  await page.fill("#f-bill", "AF085713323054");
  await page.click("#search");
  const row = page.locator(`#transactions-body tr[data-trx-id="${paymentTrxId}"]`);
  await row.waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#transactions-body tr").length === 1);
  const cells = await row.locator("td").allTextContents();
  console.log(`  row: ${cells.join(" | ")}`);
  assert.match(cells[0], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, "time");
  assert.equal(cells[1], "Payment");
  assert.equal(cells[2], "Succeeded");
  assert.equal(cells[3], "2042");
  assert.equal(cells[4], "AF085713323054");
  assert.ok(cells[5].length > 1, "customer name");
  assert.equal(cells[6], "Rp 305.550");
  assert.equal(cells[7], paymentTrxId);
  assert.equal(
    await row.locator(".badge").evaluate((b) => getComputedStyle(b).backgroundColor),
    "rgb(231, 246, 236)",
    "a green badge"
  );

  step("the time is in Asia/Jakarta, not the browser's zone");
  const apiTime = await page.evaluate(
    async ([id, key]) => {
      const r = await fetch(`/v1/transactions/${id}`, { headers: { Authorization: `Bearer ${key}` } });
      return (await r.json()).createdAt;
    },
    [paymentId, financeKey]
  );
  const jakarta = new Date(new Date(apiTime).getTime() + 7 * 3600_000).toISOString();
  assert.equal(cells[0], `${jakarta.slice(0, 10)} ${jakarta.slice(11, 19)}`);

  step("open the payment: fields, receipt, result and upstream exchanges");
  await row.click();
  const dialog = page.locator("#detail");
  await dialog.waitFor({ state: "visible" });
  await page.locator("#detail-receipt th", { hasText: "Kode Bayar" }).waitFor();
  const receipt = await page.locator("#detail-receipt").textContent();
  assert.match(receipt, /AF085713323054/);
  await dialog.locator(".kv", { hasText: "Result" }).filter({ hasText: "000" }).waitFor();
  await dialog.locator(".money-total", { hasText: "Rp 305.550" }).waitFor();
  const exchanges = page.locator("#detail-exchanges .exchange");
  assert.ok((await exchanges.count()) >= 1, "at least one exchange");
  const exchange = exchanges.last();
  assert.match(await exchange.locator("summary").textContent(), /payment/);
  const request = await exchange.locator("pre").first().textContent();
  assert.ok(request.includes("\n  "), "the request JSON is pretty-printed");
  assert.ok(request.includes(paymentTrxId), "the request carries the trxId");
  const answer = await exchange.locator("pre").nth(1).textContent();
  assert.ok(answer.includes("000"), "the answer carries the result code");
  await page.screenshot({ path: join(artifacts, "finance-detail.png") });
  await exchange.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, "finance-exchanges.png") });

  step("print the payment's receipt (32 and 48 columns)");
  await dialog.locator("#print-receipt-show").click();
  const paper = dialog.locator("#print-receipt");
  await paper.waitFor({ state: "visible" });
  const narrow = await paper.textContent();
  assert.match(narrow, /Rp 305\.550/);
  assert.match(narrow, /AF085713323054/);
  assert.ok(!narrow.includes("NOT PROOF"), "a succeeded payment's receipt is proof");
  for (const line of narrow.split("\n")) assert.ok([...line].length <= 32, `wider than 32: ${line}`);
  await dialog.locator("#print-receipt-width").selectOption("48");
  await page.waitForFunction(
    () => document.querySelector("#print-receipt").textContent.split("\n").some((l) => l.length > 32)
  );
  const wide = await paper.textContent();
  for (const line of wide.split("\n")) assert.ok([...line].length <= 48, `wider than 48: ${line}`);
  await page.evaluate(() => {
    window.printed = 0;
    window.print = () => {
      window.printed += 1;
    };
  });
  await dialog.locator("#print-receipt-print").click();
  assert.equal(await page.evaluate(() => window.printed), 1, "Print opens the print dialog");
  await paper.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, "finance-receipt.png") });

  step("the inquiry link opens the inquiry");
  await dialog.locator(".kv", { hasText: "Inquiry" }).locator("button").click();
  await page.locator("#detail-title", { hasText: "Inquiry" }).waitFor();
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });

  step("CSV download of the current filters");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  assert.match(download.suggestedFilename(), /^transactions-\d{4}-\d{2}-\d{2}\.csv$/);
  assert.equal(download.suggestedFilename(), `transactions-${jakartaToday()}.csv`);
  const csv = readFileSync(await download.path(), "utf8");
  const [header, ...lines] = csv.replace(/^\uFEFF/, "").trim().split(/\r?\n/);
  console.log(`  header: ${header}`);
  assert.match(header, /trx_?id/i, "the header row names the trxId column");
  assert.doesNotMatch(header, /^\d/, "the first line is a header");
  assert.ok(lines.length >= 1, "at least one data row");
  assert.ok(csv.includes(paymentTrxId), "the payment's trxId is in the file");
  assert.ok(!csv.includes(purchaseTrxId), "the filters apply: no purchase");

  step("the daily report: groups, totals and the inquiry count");
  await page.click("#tab-report");
  await page.locator("#panel-report").waitFor({ state: "visible" });
  assert.equal(await page.inputValue("#report-date"), jakartaToday(), "defaults to today in Jakarta");
  if (reportDate !== jakartaToday()) {
    await page.fill("#report-date", reportDate);
    await page.click("#report-show");
  }
  const group = page.locator(
    '#report-body tr[data-type="payment"][data-product="2042"][data-status="succeeded"]'
  );
  await group.waitFor();
  const groupCells = await group.locator("td").allTextContents();
  console.log(`  group: ${groupCells.join(" | ")}`);
  assert.deepEqual(groupCells, ["Payment", "2042", "Succeeded", "1", "Rp 304.000", "Rp 1.550", "Rp 305.550"]);
  assert.ok(Number((await page.textContent("#report-inquiries")).replace(/\./g, "")) >= 31, "inquiries");
  await page.locator('#report-body tr[data-status="failed"]').first().waitFor();
  await page.locator('#report-body tr[data-type="purchase"]').first().waitFor();
  assert.match(await page.textContent("#report-foot-total"), /^Rp \d{1,3}(\.\d{3})+$/);
  await page.screenshot({ path: join(artifacts, "finance-report.png") });

  step("the reconciliation: the top-up is a break, in the table and on the chart");
  await page.click("#tab-reconciliation");
  await page.locator("#panel-reconciliation").waitFor({ state: "visible" });
  if (reportDate !== jakartaToday()) {
    await page.fill("#recon-date", reportDate);
    await page.click("#recon-show");
  }
  await page.locator("#recon-content").waitFor({ state: "visible" });
  assert.equal(await page.textContent("#recon-balanced"), "not balanced");
  const breakRows = page.locator("#recon-body tr.break-row");
  const topUpText = `+ Rp ${String(topUp).replace(/\B(?=(\d{3})+(?!\d))/g, ".")}`;
  const topUpRow = breakRows.filter({ hasText: topUpText });
  await topUpRow.waitFor();
  assert.equal(await topUpRow.count(), 1, `one break of ${topUpText}`);
  const rowCells = await topUpRow.locator("td").allTextContents();
  console.log(`  break: ${rowCells.join(" | ")}`);
  const chart = page.locator("#recon-chart svg.balance-chart");
  await chart.waitFor();
  const breakCount = await breakRows.count();
  assert.equal(await chart.getAttribute("data-breaks"), String(breakCount), "every break is marked");
  assert.equal(await chart.locator(".chart-break").count(), breakCount);
  assert.ok(
    (await chart.locator(".chart-break title").allTextContents()).includes(`Unexplained ${topUpText}`),
    "the top-up's mark"
  );
  assert.match(await chart.locator("path.chart-line").getAttribute("d"), /^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+$/);
  mkdirSync(dirname(reconciliationScreenshot), { recursive: true });
  await page.screenshot({ path: reconciliationScreenshot });
  console.log(`  wrote ${reconciliationScreenshot}`);
  step("the transaction just before the top-up opens from its break");
  await topUpRow.locator("td").nth(3).locator("button").click();
  await page.locator("#detail").waitFor({ state: "visible" });
  await page.locator("#detail-title", { hasText: "Payment" }).waitFor();
  await page.keyboard.press("Escape");
  await page.locator("#detail").waitFor({ state: "hidden" });

  step("back to all transactions for the README's screenshot");
  await page.click("#tab-transactions");
  await page.click("#reset-filters");
  await rows.nth(49).waitFor();
  await page.locator("#balance-value").filter({ hasText: /^Rp / }).waitFor();
  await page.mouse.move(700, 480); // a hovered row shows how rows are picked
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot });
  console.log(`  wrote ${screenshot}`);

  step("narrow screens: the table scrolls, the page does not");
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await page.screenshot({ path: join(artifacts, "finance-phone.png") });
  await page.setViewportSize({ width: 1360, height: 940 });

  step("sign out forgets the key");
  await page.click("#sign-out");
  await page.locator("#signin-view").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.reload();
  await page.locator("#signin-view").waitFor({ state: "visible" });

  assert.deepEqual(problems, [], "no script errors and no CSP violations");
  console.log("finance page journey: ok");
} catch (error) {
  console.error(error);
  if (page) {
    await page.screenshot({ path: join(artifacts, "finance-failure.png"), fullPage: true }).catch(() => {});
  }
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(watchdog);
}
