// specialist.mjs: specialists through `nook serve`, with fetch and the real npm clients
// (`ollama`, `openai`) unchanged:
//  - POST /api/classify: one text, a batch (in order), the result's fields, an
//    abstaining result that still carries the most likely label, 404 for an unknown
//    name, 400 for bad input, a path in "model" never opened (404);
//  - a specialist's name given to /api/chat and /v1/chat/completions answers with the
//    label of the last user message, whole and streamed; other models still reach the
//    generation routes;
//  - abstain -> router: a specialist trained with threshold 0.99 and route {policy:
//    remote} (request field) or NOOK_ROUTE=auto (configuration) sends the case to the
//    mock OpenAI-compatible remote of the router tests (loopback), asked with the label
//    set; the result says it escalated and which label came back; the bodies the mock
//    received equal the egress ledger's lines in number and SHA-256.
// No model is needed (text-feature specialists). Exits 77 (skip) without node_modules
// or python3.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/ollama')) || !existsSync(resolve(here, 'node_modules/openai')))
  skip('run `npm ci` in tests/clients first');
if (spawnSync('python3', ['--version']).status !== 0) skip('python3 missing');
const { Ollama } = await import('ollama');
const { default: OpenAI } = await import('openai');

const { check, failed, done } = tally();

const tmp = mkdtempSync(join(tmpdir(), 'nook-spec-'));
const home = join(tmp, 'home');
const data = resolve(here, '../data/specialist/split.jsonl');
const mockLog = join(tmp, 'mock.log');
const env = { ...process.env, NOOK_HOME: home, NOOK_MODELS: '' };
let mock, srv;
try {
  for (const [name, extra] of [['split', []], ['unsure', ['--threshold', '0.99']]]) {
    const r = spawnSync(process.env.NOOK, ['specialize', name, '--data', data, ...extra], { env });
    check(`specialize ${name}`, r.status === 0, String(r.stderr));
  }
  mock = spawn('python3', [resolve(here, '../router/fixtures/mock_remote.py'), mockLog, '--lifetime', '60'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const mport = await new Promise((ok, no) => {
    const t = setTimeout(() => no(new Error('mock remote did not start')), 10000);
    mock.stdout.once('data', (d) => { clearTimeout(t); ok(Number(String(d).trim())); });
  });
  srv = await startServer({
    NOOK_HOME: home, NOOK_MODELS: '', NOOK_ESCALATE_URL: `http://127.0.0.1:${mport}/v1`,
    NOOK_ESCALATE_MODEL: 'mock-big', NOOK_ESCALATE_KEY_ENV: '', NOOK_ROUTE: '', NOOK_OFFLINE: '',
  });
  const post = async (path, body) => {
    const r = await fetch(`${srv.base}${path}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const two = 'Fix the flaky test and then book the flights for the team.';
  const one = 'The build is green.';

  // ---- /api/classify ----
  let r = await post('/api/classify', { model: 'split', input: [one, two] });
  const res = r.body.results;
  check('classify batch', r.status === 200 && r.body.model === 'split' && res?.length === 2, JSON.stringify(r.body));
  check('classify fields', res && res.every((x) => Object.keys(x).sort().join() === 'abstain,confidence,label,probabilities' &&
    ['one', 'two'].includes(x.label) && x.confidence === x.probabilities[x.label] &&
    Math.abs(x.probabilities.one + x.probabilities.two - 1) < 1e-9), JSON.stringify(res));
  check('classify labels', res?.[0].label === 'one' && res?.[1].label === 'two', JSON.stringify(res));
  r = await post('/api/classify', { model: 'split', input: two });
  check('classify one text', r.status === 200 && r.body.results?.length === 1 && r.body.results[0].label === 'two');
  r = await post('/api/classify', { model: 'unsure', input: one });
  const ab = r.body.results?.[0];
  check('abstain keeps the label', r.status === 200 && ab?.abstain === true && ab.label === 'one' && !ab.escalation,
    JSON.stringify(r.body));
  r = await post('/api/classify', { model: 'nosuch', input: one });
  check('unknown 404', r.status === 404 && /not found/.test(r.body.error), JSON.stringify(r.body));
  r = await post('/api/classify', { model: join(home, 'models/blobs/x.gguf'), input: one });
  check('a path is not a name', r.status === 404, JSON.stringify(r.body));
  for (const bad of [{ model: 'split' }, { model: 'split', input: 5 }, { model: 'split', input: ['a', 7] },
    { input: 'a' }, { model: 'split', input: 'a', threshold: 2 }]) {
    r = await post('/api/classify', bad);
    check(`bad input 400 ${JSON.stringify(bad)}`, r.status === 400 && typeof r.body.error === 'string', JSON.stringify(r.body));
  }

  // ---- chat through the clients ----
  const ol = new Ollama({ host: srv.base });
  let c = await ol.chat({ model: 'split', messages: [{ role: 'user', content: two }], stream: false });
  check('ollama chat', c.message.content === 'two' && c.done === true, JSON.stringify(c));
  let text = '';
  for await (const part of await ol.chat({ model: 'split', messages: [{ role: 'system', content: 'x' },
    { role: 'user', content: one }], stream: true })) text += part.message.content;
  check('ollama chat stream', text === 'one', text);
  const oa = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const oc = await oa.chat.completions.create({ model: 'split', messages: [{ role: 'user', content: two }] });
  check('openai chat', oc.choices[0].message.content === 'two' && oc.choices[0].finish_reason === 'stop' &&
    oc.classification?.label === 'two', JSON.stringify(oc));
  text = '';
  for await (const ch of await oa.chat.completions.create({ model: 'split', stream: true,
    messages: [{ role: 'user', content: [{ type: 'text', text: one }] }] })) text += ch.choices[0]?.delta?.content ?? '';
  check('openai chat stream', text === 'one', text);
  let err = null;
  try { await oa.chat.completions.create({ model: 'nosuch-model', messages: [{ role: 'user', content: 'x' }] }); }
  catch (e) { err = e; }
  check('other models reach the generation routes', err?.status === 404, String(err));

  // ---- /api/show: the library's description, as for a model ----
  const sh = await ol.show({ model: 'split' });
  const mi = sh.model_info ?? {};
  check('show details', sh.details?.family === 'specialist' && sh.details.format === 'gguf' &&
    sh.details.families?.[0] === 'specialist' && sh.details.parent_model === '' && /^[\d.]+K?$/.test(sh.details.parameter_size ?? ''),
    JSON.stringify(sh.details));
  check('show model_info', mi['general.architecture'] === 'nook-specialist' && mi['specialist.labels']?.join() === 'one,two' &&
    Math.abs(mi['specialist.threshold'] - 0.5) < 1e-6 && mi['specialist.features.word_max'] === 2 &&
    mi['specialist.features.char_min'] === 2 && mi['specialist.features.char_max'] === 5 && mi['specialist.features.idf'] === true && mi['specialist.n_train'] === 48 &&
    mi['specialist.cv.macro_f1'] > 0 && mi['specialist.cv.macro_f1'] <= 1 && sh.capabilities?.join() === 'classify',
    JSON.stringify(sh));
  const cliShow = spawnSync(process.env.NOOK, ['show', 'split'], { env, encoding: 'utf8' });
  check('nook show says the same', cliShow.status === 0 && cliShow.stdout.includes(
    `out-of-fold macro-F1 ${mi['specialist.cv.macro_f1']?.toFixed(4)}`), cliShow.stdout);
  r = await post('/api/show', { name: 'unsure' });
  check('show by "name"', r.status === 200 && Math.abs(r.body.model_info?.['specialist.threshold'] - 0.99) < 1e-6, JSON.stringify(r.body));
  r = await post('/api/show', { model: 'nosuch-model' });
  check('show: other names reach the store', r.status === 404, JSON.stringify(r.body));

  // ---- abstain -> router (mock remote) ----
  r = await post('/api/classify', { model: 'unsure', input: ['two', 'The build is green.'], route: { policy: 'remote' } });
  const e0 = r.body.results?.[0]?.escalation, e1 = r.body.results?.[1]?.escalation;
  check('escalated with the label set', r.status === 200 && e0?.escalated === true && e0.label === 'two' &&
    e0.route?.target === 'remote' && /^\d+-[0-9a-f]{12}$/.test(e0.route.audit_id ?? ''), JSON.stringify(r.body));
  check('an answer that is not a label', e1?.escalated === true && e1.label === null && e1.answer === 'REMOTE: The build is green.',
    JSON.stringify(e1));
  const ec = await oa.chat.completions.create({ model: 'unsure', messages: [{ role: 'user', content: 'one' }],
    route: { policy: 'auto' } });
  check('openai chat escalated', ec.choices[0].message.content === 'one' && ec.classification?.escalation?.escalated === true,
    JSON.stringify(ec));
  r = await post('/api/classify', { model: 'unsure', input: 'two', route: { policy: 'ask' } });
  const sg = r.body.results?.[0]?.escalation;
  check('ask: a suggestion, nothing sent', sg?.escalated === false && sg.route?.target === 'suggest' &&
    /one, two/.test(sg.route.suggestion?.messages?.[0]?.content ?? ''), JSON.stringify(r.body));
  r = await post('/api/classify', { model: 'unsure', input: 'two', route: { policy: 'remote', local_only: true } });
  check('local_only pin: nothing sent', r.body.results?.[0]?.escalation?.escalated === false, JSON.stringify(r.body));

  // what the mock received == the ledger's egress lines (3 sent above)
  const got = readFileSync(mockLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const led = readFileSync(join(home, 'egress.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((l) => l.kind === 'egress');
  check('mock == ledger', got.length === 3 && led.length === 3 &&
    got.every((g, i) => g.sha256 === led[i].body_sha256), `${got.length} ${led.length}`);
  check('prompted with the label set', got.every((g) => /one, two\./.test(JSON.parse(g.body).messages[0].content)));
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
} finally {
  if (srv) await srv.stop();
  if (mock) mock.kill();
  rmSync(tmp, { recursive: true, force: true });
}
done();
