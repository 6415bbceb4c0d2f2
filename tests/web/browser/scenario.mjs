// SPDX-License-Identifier: MIT
// Drives three people's pages in headless Chromium (Debian's, through
// playwright-core; no browser is downloaded).  Run by test_web_browser.py,
// which starts the nodes and `twofold web` for each and passes a JSON file:
//   { chromium, artifacts, carol: {url}, alice: {url}, bob: {url}, hostile: {...},
//     restart_request, propose_request, stranger_request }
// and acts on the request files when they appear (restarts Carol's node;
// proposes an intro from her CLI; has a stranger named "carol" propose).
// Exits 0 when every check passed; prints one line per step.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const WAIT = 30000; // anything that crosses the network and the event stream
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok - ' + what);
}

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const consoleErrors = [];

async function open(name) {
  const ctx = await browser.newContext({ viewport: DESKTOP });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(name + ': ' + m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(name + ': ' + e.message));
  page.on('dialog', (d) => d.accept());
  await page.goto(cfg[name].url);
  // The secret is gone from the address bar once signed in.
  await page.waitForURL((u) => !u.search.includes('k=') && !u.hash.includes('t='), { timeout: WAIT });
  await page.waitForSelector('#live.ok', { timeout: WAIT });
  // A marker that a reload would wipe: pages must update without one.
  await page.evaluate(() => { window.__noReload = 1; });
  return page;
}

// Screenshots at desktop and phone widths (and the phone one in the dark
// scheme); on the way, checks that the view has no unlabelled form field and
// no horizontal scrolling at phone width.
async function shot(page, name) {
  for (const [label, vp, scheme] of [['desktop', DESKTOP, 'light'], ['phone', PHONE, 'light'],
    ['phone-dark', PHONE, 'dark']]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.setViewportSize(vp);
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(cfg.artifacts, `${name}-${label}.png`), fullPage: true });
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `${name}: no horizontal scrolling at ${PHONE.width} px (${overflow} px)`);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(DESKTOP);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea')]
    .filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
    .map((e) => e.outerHTML.slice(0, 80)));
  check(unlabelled.length === 0, `${name}: every form field has a label ${unlabelled.join(' ')}`);
}

async function go(page, view) {
  await page.evaluate((v) => { location.hash = '#' + v; }, view);
  await page.waitForSelector(`.view[data-view="${view}"]`, { timeout: WAIT });
}

// The inbox item for topic, once it arrived (live, without a reload).
async function inboxItem(page, topic, state) {
  const item = page.locator('main article.card', { has: page.locator('.topic', { hasText: topic }) })
    .and(page.locator(`[data-state="${state}"]`));
  await item.first().waitFor({ timeout: WAIT });
  return item.first();
}

async function propose(page, topic, extra) {
  await go(page, 'propose');
  await page.getByLabel('Person A', { exact: true }).fill('alice');
  await page.getByLabel('Person B', { exact: true }).fill('bob');
  await page.getByLabel('Topic', { exact: true }).fill(topic);
  for (const [label, text] of Object.entries(extra || {})) await page.getByLabel(label).fill(text);
  await page.getByRole('button', { name: 'Propose', exact: true }).click();
  await page.waitForSelector('.view[data-view="intros"]', { timeout: WAIT });
  const card = page.locator('main article.card', { has: page.locator('.topic', { hasText: topic }) }).first();
  await card.waitFor({ timeout: WAIT });
  return card;
}

let failed = false;
try {
  const carol = await open('carol');
  const alice = await open('alice');
  const bob = await open('bob');
  check(true, 'three pages signed in from their printed links');

  // Carol proposes; the preview shows what each side will see.
  const h = cfg.hostile;
  await go(carol, 'propose');
  await carol.getByLabel('Person A', { exact: true }).fill('alice');
  await carol.getByLabel('Person B', { exact: true }).fill('bob');
  await carol.getByLabel('Topic', { exact: true }).fill('rust');
  await carol.getByLabel('Note to A only (replaces the note to both)').fill(h.note);
  await carol.getByLabel('What A is told about B (optional)').fill(h.bidi);
  await carol.locator('.preview').first().getByText('rust').waitFor({ timeout: WAIT });
  const preview = await carol.locator('.preview').first().textContent();
  check(preview.includes(h.note) && preview.includes(h.bidi), "the preview shows exactly what A will see");
  await shot(carol, 'propose');
  await carol.getByRole('button', { name: 'Propose', exact: true }).click();
  await carol.waitForSelector('.view[data-view="intros"]', { timeout: WAIT });
  const first = carol.locator('main article.card', { has: carol.locator('.topic', { hasText: 'rust' }) }).first();
  await first.waitFor({ timeout: WAIT });
  const firstId = await first.getAttribute('data-id');
  check(/^[0-9a-f]{64}$/.test(firstId), 'Carol proposed from her page: intro ' + firstId.slice(0, 12));

  // Alice and Bob, already on their inboxes, see it arrive without a reload.
  const aItem = await inboxItem(alice, 'rust', 'pending');
  const bItem = await inboxItem(bob, 'rust', 'pending');
  check(true, "the proposal appeared on Alice's and Bob's open pages (live)");

  // Peer-written hostile text is inert: shown as text, no element made.
  const aText = await aItem.textContent();
  check(aText.includes(h.note), "Carol's <script> note is shown as text on Alice's page");
  check(await alice.evaluate(() => window.__pwned === undefined), 'no peer-written script ran');
  check(await alice.locator('main script, main img, main b.hostile').count() === 0,
    'no element was made from peer-written text');
  const bidiTag = await aItem.locator('bdi', { hasText: h.bidi }).evaluate(
    (e) => [e.tagName, getComputedStyle(e).unicodeBidi]);
  check(bidiTag[0] === 'BDI' && bidiTag[1] === 'isolate', 'bidi text is isolated (' + bidiTag.join(' ') + ')');
  await shot(alice, 'inbox');

  // Alice accepts with a note; the item leaves her list of pending ones.
  await aItem.getByLabel('Note to the other person (optional)').fill('hello from Alice');
  await aItem.getByRole('button', { name: 'Accept' }).click();
  await aItem.waitFor({ state: 'detached', timeout: WAIT });
  check(true, 'Alice accepted from her page');
  await carol.locator(`main article.card[data-id="${firstId}"] .side[data-state="accepted"]`).waitFor({ timeout: WAIT });
  check(true, "Carol's page shows Alice's acceptance without a reload");

  // Bob declines with a private reason.
  await bItem.getByLabel('Private reason, for the connector only (optional)').fill('not now');
  await bItem.getByRole('button', { name: 'Decline' }).click();
  await bItem.waitFor({ state: 'detached', timeout: WAIT });
  check(true, 'Bob declined from his page');

  // Carol's open intros page follows both answers live.
  const firstCard = carol.locator(`main article.card[data-id="${firstId}"]`);
  await firstCard.locator('.side[data-state="declined"]').waitFor({ timeout: WAIT });
  await firstCard.and(carol.locator('[data-state="declined"]')).waitFor({ timeout: WAIT });
  check(true, "Carol's page shows Bob's decline and the intro declined, without a reload");
  check(await firstCard.getByText('not now').count() === 1, "Carol sees Bob's private reason");

  // A second intro, accepted by both.
  const second = await propose(carol, 'go');
  const secondId = await second.getAttribute('data-id');
  const a2 = await inboxItem(alice, 'go', 'pending');
  const b2 = await inboxItem(bob, 'go', 'pending');
  await a2.getByRole('button', { name: 'Accept' }).click();
  await b2.getByRole('button', { name: 'Accept' }).click();
  await carol.locator(`main article.card[data-id="${secondId}"][data-state="introduced"]`).waitFor({ timeout: WAIT });
  check(true, "the second intro: both accepted, Carol's page shows them introduced");
  await shot(carol, 'intros');

  // Alice now has Bob as a contact; the contacts page lists him.
  await go(alice, 'contacts');
  await alice.locator('main table.contacts tbody tr').filter({ hasText: 'Bob' }).first().waitFor({ timeout: WAIT });
  check(true, "Alice's contacts page lists Bob, introduced by Carol");
  await shot(alice, 'contacts');
  await alice.getByLabel('Search this page (Enter: look up an alias or id among all)').fill('carol');
  check(await alice.locator('main table.contacts tbody tr').count() === 1, 'contact search filters the list');

  // Policy: a file with an error is refused with its line and column (the
  // test wrote one for Carol), and the test form answers.
  await go(carol, 'policy');
  await carol.getByRole('button', { name: 'Reload the policy file' }).click();
  await carol.locator('main p.bad', { hasText: 'Line 2, column' }).waitFor({ timeout: WAIT });
  check(true, "a policy error is shown with its line and column");
  await carol.getByLabel('Topic', { exact: true }).fill('rust');
  await carol.getByRole('button', { name: 'Test', exact: true }).click();
  await carol.locator('main p[role=status] strong', { hasText: 'ask' }).waitFor({ timeout: WAIT });
  check(true, 'the policy test form answers (ask: the broken file was not loaded)');

  // The other pages render; screenshots for people to look at.
  for (const v of ['inbox', 'policy', 'status', 'contacts']) {
    await go(carol, v);
    await shot(carol, 'carol-' + v);
  }
  await go(bob, 'inbox');
  await bob.getByLabel('show answered and closed ones too').check();
  await bob.locator('main article.card[data-state="introduced"]').first().waitFor({ timeout: WAIT });
  await shot(bob, 'bob-inbox-all');

  // Keyboard: from the title, Tab walks the page links in order; Enter
  // follows one.
  await carol.evaluate(() => window.scrollTo(0, 0));
  await carol.click('header h1');
  await carol.keyboard.press('Tab');
  check(await carol.evaluate(() => document.activeElement.getAttribute('href')) === '#inbox', 'Tab reaches the first page link');
  await carol.keyboard.press('Tab');
  check(await carol.evaluate(() => document.activeElement.getAttribute('href')) === '#intros', 'Tab walks the page links');
  await carol.keyboard.press('Enter');
  await carol.waitForSelector('.view[data-view="intros"]', { timeout: WAIT });
  check(true, 'a page link is followed from the keyboard');

  // Carol's node restarts under her open page (the test restarts it when
  // asked through a file): the page reconnects its event stream by itself and
  // shows an intro proposed meanwhile through the CLI, without a reload.
  await go(carol, 'intros');
  fs.writeFileSync(cfg.restart_request, '');
  await carol.waitForSelector('#live.warn', { timeout: WAIT });
  check(true, "Carol's page noticed her node stopping");
  await carol.waitForSelector('#live.ok', { timeout: 2 * WAIT });
  check(true, "Carol's page reconnected to her restarted node by itself");
  fs.writeFileSync(cfg.propose_request, '');
  await carol.locator('main article.card', { has: carol.locator('.topic', { hasText: 'after-restart' }) }).first().waitFor({ timeout: WAIT });
  check(true, 'an intro proposed after the restart appeared on her open page');

  // A stranger who calls itself "carol" (Alice's alias for Carol) proposes
  // to Alice (the test starts it when asked through a file): her page shows
  // its name quoted with its short id, a stranger badge and a warning, never
  // as the plain alias the real Carol gets.
  await go(alice, 'inbox');
  fs.writeFileSync(cfg.stranger_request, '');
  const fake = await inboxItem(alice, 'from-a-stranger', 'pending');
  const from = fake.locator('dd').first();
  await from.locator('.badge.stranger').waitFor({ timeout: WAIT });
  await from.locator('.badge.spoof').waitFor({ timeout: WAIT });
  const fromText = (await from.innerText()).trim();
  check(fromText.startsWith('"carol" tf1'), `a stranger's own name is quoted with its short id (${fromText})`);
  check(await from.locator(':scope > .alias').count() === 0, "a stranger's name is not shown as an alias");
  check(/stranger: not a contact/.test(fromText), 'a stranger connector has a "stranger: not a contact" badge');
  check(/not your carol/.test(fromText), 'a name equal to an alias is flagged "not your carol"');
  const real = await inboxItem(alice, 'after-restart', 'pending');
  const realFrom = real.locator('dd').first();
  check((await realFrom.innerText()).trim() === 'carol' && await realFrom.locator('.alias').count() === 1,
    "the real Carol is shown by Alice's alias, plainly");
  await shot(alice, 'stranger');

  for (const [n, p] of [['carol', carol], ['alice', alice], ['bob', bob]]) {
    check(await p.evaluate(() => window.__noReload === 1), n + "'s page never reloaded");
  }
  const cspErrors = consoleErrors.filter((e) => /Content Security Policy|Refused to/.test(e));
  check(cspErrors.length === 0, 'no Content-Security-Policy violation (' + cspErrors.join('; ') + ')');
  console.log(JSON.stringify({ first: firstId, second: secondId }));
} catch (e) {
  failed = true;
  console.error('FAIL: ' + e.message);
  for (const [i, ctx] of browser.contexts().entries()) {
    for (const p of ctx.pages()) {
      await p.screenshot({ path: path.join(cfg.artifacts, `failure-${i}.png`), fullPage: true }).catch(() => {});
    }
  }
  console.error(consoleErrors.join('\n'));
} finally {
  await browser.close();
}
process.exitCode = failed ? 1 : 0;
