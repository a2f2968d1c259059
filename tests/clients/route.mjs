// route.mjs: the router through the real npm clients, unchanged: the `openai` and
// `ollama` packages send the request field `route` ({policy, local_only}) to `nook serve`
// and read the `route` object back, whole and streamed, with a mock OpenAI-compatible
// remote on loopback (tests/router/fixtures/mock_remote.py) as the escalation target;
// afterwards the bodies the mock received equal the egress ledger's lines in number
// and SHA-256. The low-confidence model is stories260K with random weights
// ($NOOK_BUILD/randomize). Run by ctest (label model); exits 77 (skip) when the
// fixture, python3, randomize or node_modules is missing.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/ollama')) || !existsSync(resolve(here, 'node_modules/openai')))
  skip('run `npm ci` in tests/clients first');
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) skip(`${model} not found`);
const randomize = resolve(process.env.NOOK_BUILD || resolve(here, '../../build'), 'randomize');
if (!existsSync(randomize)) skip(`${randomize} not found`);
if (spawnSync('python3', ['--version']).status !== 0) skip('python3 missing');
const { Ollama } = await import('ollama');
const { default: OpenAI } = await import('openai');

const { check, failed, done } = tally();

const tmp = mkdtempSync(join(tmpdir(), 'nook-route-'));
const random = join(tmp, 'random.gguf');
const home = join(tmp, 'home');
const mockLog = join(tmp, 'mock.log');
let mock, srv;
try {
  check('randomize', spawnSync(randomize, [model, random, '1']).status === 0);
  mock = spawn('python3', [resolve(here, '../router/fixtures/mock_remote.py'), mockLog, '--lifetime', '60'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const mport = await new Promise((ok, no) => {
    const t = setTimeout(() => no(new Error('mock remote did not start')), 10000);
    mock.stdout.once('data', (d) => { clearTimeout(t); ok(Number(String(d).trim())); });
  });
  srv = await startServer({
    NOOK_HOME: home, NOOK_ESCALATE_URL: `http://127.0.0.1:${mport}/v1`, NOOK_ESCALATE_MODEL: 'mock-big',
    NOOK_ESCALATE_KEY_ENV: '', NOOK_ROUTE: '', NOOK_OFFLINE: '',
  });

  // ---- openai ----
  const oa = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const msgs = (content) => [{ role: 'user', content }];
  let c = await oa.chat.completions.create({ model, messages: msgs('Once upon a time'), max_tokens: 24, temperature: 0,
    route: { policy: 'auto' } });
  check('openai auto kept local', c.route?.target === 'local' && c.route.reason.startsWith('confident') &&
    c.route.signals?.n_tokens > 0 && c.choices[0].message.content.length > 0, JSON.stringify(c.route));
  c = await oa.chat.completions.create({ model, messages: msgs('Mail bob@example.com'), route: { policy: 'remote' } });
  check('openai remote', c.route?.target === 'remote' && c.choices[0].message.content === 'REMOTE: Mail bob@example.com' &&
    c.route.redactions?.EMAIL === 1 && /^\d+-[0-9a-f]{12}$/.test(c.route.audit_id), JSON.stringify(c));
  let text = '', fin = null;
  for await (const ch of await oa.chat.completions.create({ model: random, messages: msgs('Once upon a time'),
    max_tokens: 24, temperature: 0, stream: true, route: { policy: 'auto' } })) {
    text += ch.choices[0]?.delta?.content ?? '';
    if (ch.choices[0]?.finish_reason) fin = ch;
  }
  check('openai stream escalated', text === 'REMOTE: Once upon a time' && fin?.route?.target === 'remote' &&
    fin.route.reason.startsWith('low confidence'), `${JSON.stringify(text)} ${JSON.stringify(fin?.route)}`);
  const cp = await oa.completions.create({ model: random, prompt: 'Ask alice@example.org', max_tokens: 24, temperature: 0,
    route: { policy: 'ask' } });
  check('openai ask', cp.route?.target === 'suggest' && cp.route.audit_id === null &&
    cp.route.suggestion?.messages?.[0]?.content === 'Ask [EMAIL_1]', JSON.stringify(cp.route));
  let err = null;
  try { await oa.chat.completions.create({ model, messages: msgs('x'), route: { policy: 'never' } }); } catch (e) { err = e; }
  check('openai bad policy', err?.status === 400 && /route\.policy/.test(err.message), String(err));

  // ---- ollama ----
  const ol = new Ollama({ host: srv.base });
  const g = await ol.generate({ model: random, prompt: 'Once upon a time', raw: true, stream: false,
    options: { temperature: 0, num_predict: 24 }, route: { policy: 'auto' } });
  check('ollama generate escalated', g.route?.target === 'remote' && g.response === 'REMOTE: Once upon a time' && g.done,
    JSON.stringify(g));
  let parts = 0, last = null, said = '';
  for await (const p of await ol.chat({ model, messages: msgs('Once upon a time'), stream: true,
    options: { temperature: 0, num_predict: 24 }, route: { policy: 'auto' } })) {
    parts++; last = p; said += p.message.content;
  }
  check('ollama chat stream held then final', parts === 2 && last.done && last.route?.target === 'local' && said.length > 0,
    `${parts} ${JSON.stringify(last)}`);
  const pinned = await ol.chat({ model, messages: msgs('my diary'), stream: false, options: { num_predict: 4 },
    route: { policy: 'remote', local_only: true } });
  check('ollama request pin', pinned.route?.target === 'local' && pinned.route.reason === 'pinned local (request local_only)',
    JSON.stringify(pinned.route));
  const plain = await ol.generate({ model, prompt: 'Once', stream: false, options: { num_predict: 4 } });
  check('ollama route without a field', plain.route?.target === 'local' && plain.route.policy === 'local',
    JSON.stringify(plain.route));

  // what the mock received == the ledger's egress lines
  const got = readFileSync(mockLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const eg = readFileSync(join(home, 'egress.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((l) => l.kind === 'egress');
  check('mock == ledger', got.length === 3 && eg.length === 3 &&
    got.every((r, i) => r.sha256 === eg[i].body_sha256 && r.bytes === eg[i].bytes), `${got.length} ${eg.length}`);
  check('nothing redacted or pinned sent', !got.some((r) => /bob@|alice@|diary/.test(r.body)));
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
} finally {
  if (srv) check('server exit status', (await srv.stop()) === 0);
  if (mock) mock.kill();
  rmSync(tmp, { recursive: true, force: true });
}
done();
