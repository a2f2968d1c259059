// ui.mjs: the page `nook serve` answers at /ui/, driven in headless Chromium (Debian's
// chromium, through playwright-core) against stories260K in a scratch store (issue 15):
// load the page and see the store's model in the picker, send a message and watch the
// answer stream in, read the route shown under it, run a writing task on a pasted draft,
// open the ledger view (one real escalation to a mock remote on loopback is in it), and
// check from the browser's own network log that no request left loopback, and that the
// page's Content-Security-Policy blocks one that tries. Screenshots of each step go to
// $NOOK_ARTIFACTS (default ./ui-artifacts). Exits 77 (skip) when chromium, playwright-core
// or the fixture is missing.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/playwright-core'))) skip('run `npm ci` in tests/clients first');
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!chromium) skip('no chromium (apt-get install chromium)');
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) skip(`${model} not found`);
const { chromium: pw } = await import('playwright-core');

const { check, failed, done } = tally();
const art = process.env.NOOK_ARTIFACTS || resolve(here, 'ui-artifacts');
mkdirSync(art, { recursive: true });

// A scratch store holding the model under a name, so the picker has something to list.
const home = mkdtempSync(join(tmpdir(), 'nook-ui-'));
const env = { ...process.env, NOOK_HOME: home };
writeFileSync(join(home, 'Modelfile'), `FROM ${model}\n`);
execFileSync(process.env.NOOK, ['create', 'stories', '-f', join(home, 'Modelfile')], { env, stdio: 'pipe' });

// One real escalation into the ledger: `nook run --route remote` to a mock
// OpenAI-compatible remote on loopback (a remote is a remote, wherever it listens).
let remoteHits = 0;
const remote = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    remoteHits++;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'from the mock remote' },
                                         finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 4 } }));
  });
});
await new Promise((ok) => remote.listen(0, '127.0.0.1', ok));
const remoteUrl = `http://127.0.0.1:${remote.address().port}/v1`;
const escEnv = { ...env, NOOK_ESCALATE_URL: remoteUrl, NOOK_ESCALATE_MODEL: 'big-model' };
// (asynchronously: the mock answers from this process's event loop; stdin closed, or nook
// would read it as the rest of the prompt)
const running = promisify(execFile)(process.env.NOOK,
  ['run', 'stories', 'Write to the remote', '--route', 'remote', '-n', '4'], { env: escEnv, timeout: 30000 });
running.child.stdin.end();
const { stdout: out } = await running;
check('escalation answered by the mock remote', out.includes('from the mock remote') && remoteHits === 1, out);

const srv = await startServer({ NOOK_HOME: home });
const browser = await pw.launch({
  executablePath: chromium, headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
});
let page0 = null;
const shot = (page, name) => page.screenshot({ path: join(art, name), fullPage: true });
try {
  const page = page0 = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() }));
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) consoleErrors.push(`${r.status()} ${r.url()}`); });

  // 1. the page loads and lists the store's model
  const res = await page.goto(`${srv.base}/ui/`);
  check('page 200', res.status() === 200, `${res.status()}`);
  check('page has a CSP', /connect-src 'self'/.test(res.headers()['content-security-policy'] || ''));
  await page.waitForSelector('#model option[value="stories:latest"]', { state: 'attached', timeout: 10000 });
  check('model picker', (await page.inputValue('#model')) === 'stories:latest');
  await shot(page, '1-loaded.png');

  // 2. a message, answered as a stream: count the answer's text updates as they happen
  await page.evaluate(() => {
    window.__lengths = [];   // the answer's length each time the page changed it
    new MutationObserver(() => {
      const a = document.querySelector('.msg.assistant .answer');
      const n = a ? a.textContent.length : 0;
      if (n && n !== window.__lengths[window.__lengths.length - 1]) window.__lengths.push(n);
    })
      .observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
  });
  // The tiny model answers 40 tokens faster than a browser paints, so the chunks could
  // arrive in one read; throttle this page's downloads (Chromium's own network emulation)
  // so that seeing the answer grow piece by piece is a fair test of streaming.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.emulateNetworkConditions',
                 { offline: false, latency: 0, downloadThroughput: 3000, uploadThroughput: -1 });
  await page.fill('#num-predict', '40');
  await page.fill('#prompt', 'Once upon a time, there was a little dog');
  await page.press('#prompt', 'Enter');
  await page.waitForSelector('.msg.assistant .route', { timeout: 30000 });
  const answer = await page.textContent('.msg.assistant .answer');
  const lengths = await page.evaluate(() => window.__lengths);
  const updates = lengths.length;
  check('answer text', answer.trim().length > 0, JSON.stringify(answer));
  check('answer streamed in pieces', updates >= 3 && lengths[updates - 1] === answer.length, JSON.stringify(lengths));
  console.log(`the answer grew in ${updates} steps: ${lengths.join(' ')} characters`);
  const route = await page.textContent('.msg.assistant .route');
  check('route shown', /^route: local · policy local/.test(route), JSON.stringify(route));
  const chatReq = requests.find((r) => r.url.endsWith('/api/chat'));
  const cb = chatReq ? JSON.parse(chatReq.body) : {};
  check('chat request', cb.stream === true && cb.model === 'stories:latest' && cb.options.num_predict === 40, JSON.stringify(cb));
  check('answer length', /· 40 tokens$/.test(route), route);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await shot(page, '2-answer.png');

  // 3. a writing task on a pasted draft
  await page.click('#tab-write');
  await page.fill('#draft', 'The meeting moved to Thursday. Bring the budget numbers. Ask Sam about the venue.');
  await page.click('#tasks button[data-task="split"]');
  await page.waitForSelector('.msg.assistant:nth-of-type(4) .route', { timeout: 30000 });
  const taskReq = requests.filter((r) => r.url.endsWith('/api/chat'))[1];
  const tb = taskReq ? JSON.parse(taskReq.body) : {};
  check('task request', tb.route && tb.route.task === 'split' && tb.messages[0].role === 'system' &&
        tb.messages[1].content.startsWith('The meeting moved'), JSON.stringify(tb));
  check('task answer', (await page.textContent('.msg.assistant:nth-of-type(4) .answer')).trim().length > 0);
  check('task label', (await page.textContent('.msg.user:nth-of-type(3) .task')) === 'Split');
  await shot(page, '3-task.png');

  // 4. the ledger view: the escalation above, verified
  await page.click('#tab-ledger');
  await page.waitForFunction(() => /chain verified|BROKEN|could not/.test(document.getElementById('ledger-verdict').textContent));
  const verdict = await page.textContent('#ledger-verdict');
  check('ledger verdict', /^chain verified: 2 lines, 1 sent, 0 pending/.test(verdict), JSON.stringify(verdict));
  const rows = await page.$$eval('#ledger tbody tr', (trs) => trs.map((tr) => tr.textContent));
  check('ledger rows', rows.length === 2 && rows.some((r) => r.includes('egress') && r.includes('127.0.0.1') && r.includes('big-model')),
        JSON.stringify(rows));
  await shot(page, '4-ledger.png');

  // 5. nothing left loopback: every request the browser made went to this server; and
  //    the page's CSP stops a request to anywhere else before it is made
  const foreign = requests.filter((r) => !r.url.startsWith(`${srv.base}/`));
  check('no request left the server', foreign.length === 0, JSON.stringify(foreign.map((r) => r.url)));
  const blocked = await page.evaluate(async () => {
    const v = new Promise((ok) => document.addEventListener('securitypolicyviolation', (e) => ok(e.blockedURI), { once: true }));
    const r = await fetch('http://192.0.2.1/leak').then(() => 'sent', () => 'refused');
    return [r, await v];
  });
  check('CSP refuses a foreign fetch', blocked[0] === 'refused' && blocked[1].startsWith('http://192.0.2.1'), JSON.stringify(blocked));
  const after = requests.filter((r) => !r.url.startsWith(`${srv.base}/`) && !r.url.startsWith('http://192.0.2.1'));
  check('still nothing else', after.length === 0);
  check('no script errors', consoleErrors.filter((e) => !/Content Security Policy|192\.0\.2\.1/.test(e)).length === 0,
        JSON.stringify(consoleErrors));
} catch (e) {
  failed();
  try { await shot(page0, 'failure.png'); console.error(await page0.content()); } catch {}
  console.error(`FAIL: ${e.stack || e}`);
} finally {
  await browser.close();
  await srv.stop();
  remote.close();
  rmSync(home, { recursive: true, force: true });
}
done(`ui: `, `; screenshots in ${art}`);
