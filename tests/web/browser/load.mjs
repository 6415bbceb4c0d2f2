// SPDX-License-Identifier: MIT
// Figures for the page with many intros and contacts (test_web_load.py):
// how long each view takes to draw and to page, in headless Chromium, and
// the longest main-thread task seen.  Prints figures; checks only that each
// view shows full pages.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const WAIT = 60000;
const PAGES = 10;
const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
let failed = false;

function fig(name, ms) {
  const s = [...ms].sort((a, b) => a - b);
  const med = s[Math.floor((s.length - 1) / 2)];
  console.log(`${name.padEnd(40)} n=${String(s.length).padEnd(3)} median ${med.toFixed(0).padStart(5)} ms  max ${s[s.length - 1].toFixed(0).padStart(5)} ms`);
}

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.addInitScript(() => {
    window.__longest = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
      .observe({ type: 'longtask', buffered: true });
  });
  let t = Date.now();
  await page.goto(cfg.url);
  await page.locator('main article.card').nth(49).waitFor({ timeout: WAIT });
  fig('first load, inbox (50 of ' + cfg.n + ')', [Date.now() - t]);

  // Each view: switch to it, then page PAGES times.
  async function pageThrough(view, rowSel, perPage, nextName) {
    let t0 = Date.now();
    await page.evaluate((v) => { location.hash = '#' + v; }, view);
    await page.waitForSelector(`.view[data-view="${view}"]`, { timeout: WAIT });
    await page.locator(rowSel).nth(perPage - 1).waitFor({ timeout: WAIT });
    fig(`${view}: draw the first page`, [Date.now() - t0]);
    const times = [];
    for (let i = 0; i < Math.min(PAGES, cfg.n / perPage - 1); i++) {
      const first = await page.locator(rowSel).first().getAttribute('data-id');
      t0 = Date.now();
      await page.getByRole('button', { name: nextName }).click();
      await page.waitForFunction(([sel, id]) => {
        const e = document.querySelector(sel);
        return e && e.getAttribute('data-id') !== id && document.querySelectorAll(sel).length > 0;
      }, [rowSel, first], { timeout: WAIT });
      times.push(Date.now() - t0);
      const n = await page.locator(rowSel).count();
      if (n !== perPage) throw new Error(`${view}: page ${i + 2} has ${n} rows, not ${perPage}`);
    }
    fig(`${view}: next page`, times);
  }
  await pageThrough('inbox', 'main article.card', 50, 'Older →');
  await pageThrough('intros', 'main article.card', 50, 'Older →');
  await pageThrough('contacts', 'main table.contacts tbody tr', 100, 'Next →');

  // Filtering a page of contacts as one types.
  const search = page.getByLabel('Search this page (Enter: look up an alias or id among all)');
  const ft = [];
  for (const q of ['bench', 'contact 1', 'zzz', '']) {
    const t0 = await page.evaluate(() => performance.now());
    await search.fill(q);
    ft.push(await page.evaluate((t) => performance.now() - t, t0));
  }
  fig('contacts: filter a page as one types', ft);
  // Looking one up among all by id prefix.
  const id = await page.locator('main table.contacts tbody tr').first().getAttribute('data-id');
  let t0 = Date.now();
  await search.fill(id.slice(0, 12));
  await search.press('Enter');
  await page.locator('form.detail').waitFor({ timeout: WAIT });
  fig('contacts: look one up among all', [Date.now() - t0]);

  t0 = Date.now();
  await page.evaluate(() => { location.hash = '#propose'; });
  await page.waitForSelector('.view[data-view="propose"]', { timeout: WAIT });
  fig('propose: draw (1000 names to pick from)', [Date.now() - t0]);
  const opts = await page.locator('#contact-names option').count();
  if (opts !== 1000) throw new Error('propose offers ' + opts + ' names');
  t0 = Date.now();
  await page.evaluate(() => { location.hash = '#status'; });
  await page.waitForSelector('.view[data-view="status"]', { timeout: WAIT });
  fig('status: draw', [Date.now() - t0]);
  t0 = Date.now();
  await page.getByRole('button', { name: /List the outbox/ }).click();
  await page.locator('main caption', { hasText: 'Outbox' }).waitFor({ timeout: WAIT });
  fig('status: list the outbox (' + 2 * cfg.n + ', 200 shown)', [Date.now() - t0]);
  const longest = await page.evaluate(() => window.__longest);
  console.log(`longest main-thread task: ${longest.toFixed(0)} ms`);
  await page.screenshot({ path: path.join(cfg.artifacts, 'load-status.png') });
} catch (e) {
  failed = true;
  console.error('FAIL: ' + e.message);
} finally {
  await browser.close();
}
process.exitCode = failed ? 1 : 0;
