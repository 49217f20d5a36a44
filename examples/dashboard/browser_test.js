// Browser test of the dashboard, run by main_test.go: two pages in headless
// Chromium (playwright-core with the system browser). A create in one page
// appears in the other within a second, an update changes it there, a
// delete removes it, and a refused write shows its error.
//
//   node examples/dashboard/browser_test.js http://127.0.0.1:PORT/ [screenshot.png]
const { chromium } = require('playwright-core');

const url = process.argv[2];
const screenshot = process.argv[3];
const within = 1000; // ms a change may take to reach the other page

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 900, height: 520 } });
    const [writer, watcher] = [await context.newPage(), await context.newPage()];
    for (const page of [writer, watcher]) {
      page.on('pageerror', (err) => { throw err; });
      await page.goto(url);
      await page.locator('#status[data-state="connected"]').waitFor({ timeout: 10000 });
    }
    console.log('both pages connected');

    const row = (page, name) => page.locator(`#rows tr[data-name="${name}"]`);
    // timed clicks, then measures how long until the other page shows it.
    const timed = async (what, click, seen) => {
      await click();
      const start = Date.now();
      await seen();
      console.log(`${what} in ${Date.now() - start} ms`);
    };

    // Create in one page: the row appears in both.
    await writer.fill('#name', 'Ada Lovelace');
    await writer.fill('#email', 'ada@example.com');
    await writer.selectOption('#status-field', 'active');
    await timed('create seen by the other page', () => writer.click('#create'),
      () => row(watcher, 'Ada Lovelace').waitFor({ timeout: within }));
    await row(writer, 'Ada Lovelace').waitFor({ timeout: within });

    // Update from the other page: the first one follows.
    await row(watcher, 'Ada Lovelace').locator('button.edit').click();
    await watcher.fill('#name', 'Ada King');
    await timed('update seen by the other page', () => watcher.click('#update'),
      () => row(writer, 'Ada King').waitFor({ timeout: within }));
    if (await row(writer, 'Ada Lovelace').count() !== 0) throw new Error('the old name is still shown');

    // A refused write shows its error and changes nothing.
    await writer.fill('#name', '');
    await writer.click('#create');
    await writer.locator('#error:not([hidden])').waitFor({ timeout: 5000 });
    const error = await writer.locator('#error').textContent();
    if (!error.includes('invalid_value') || !error.includes('a user needs a name')) throw new Error(`error shown: ${error}`);
    console.log('refused write shows:', error);
    if (await watcher.locator('#rows tr').count() !== 1) throw new Error('the refused write changed the table');

    // Delete: the row leaves both pages.
    await timed('delete seen by the other page', () => row(writer, 'Ada King').locator('button.delete').click(),
      () => row(watcher, 'Ada King').waitFor({ state: 'detached', timeout: within }));

    if (screenshot) {
      for (const [name, mail, status] of [['Grace Hopper', 'grace@example.com', 'active'], ['Alan Turing', 'alan@example.com', 'inactive'], ['Edsger Dijkstra', 'ewd@example.com', 'active']]) {
        await writer.fill('#name', name);
        await writer.fill('#email', mail);
        await writer.selectOption('#status-field', status);
        await writer.click('#create');
        await row(watcher, name).waitFor({ timeout: within });
      }
      await watcher.screenshot({ path: screenshot });
      console.log('screenshot', screenshot);
    }
    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
