// store.mjs: the `ollama` npm client, unchanged, on the store's endpoints of `nook serve`,
// with the loopback mock registry (tests/fixtures/registry.py) as the registry:
// pull (streamed progress objects as the client yields them, and whole), list, show,
// create (Ollama's current JSON form: files by digest, template, system, parameters,
// messages, quantize; from a name), push (to the mock, then pulled back), copy, delete,
// and the errors the client throws.
// ollama-js 0.6.4 has no blob-upload method (its CreateRequest has no `files` either,
// but passes the field through unchanged), so the GGUF is uploaded the way Ollama's own
// CLI does it: HEAD /api/blobs/<digest>, then POST the bytes when absent.
// Run by ctest (label model;clients). Exits 77 (skip) without node_modules, the fixture
// or python3. Nothing here talks to anything but 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/ollama'))) skip('run `npm ci` in tests/clients first');
const gguf = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(gguf)) skip(`${gguf} not found`);
if (spawnSync('python3', ['--version']).status !== 0) skip('python3 needed');
const { Ollama } = await import('ollama');

const { check, failed, done } = tally();
const throws = async (name, fn, re) => {
  try { await fn(); check(name, false, 'did not throw'); } catch (e) { check(name, re.test(String(e.message)), e.message); }
};

const tmp = mkdtempSync(join(tmpdir(), 'nook-store-'));
const bytes = readFileSync(gguf);
const sha = createHash('sha256').update(bytes).digest('hex');
const digest = `sha256:${sha}`;

// the mock registry, rate-limited so the pull yields several progress objects
const portFile = join(tmp, 'port');
const reg = spawn('python3', [resolve(here, '../fixtures/registry.py'), '--port-file', portFile, '--ttl', '100',
  '--model', `library/tiny:latest=${gguf}`], { stdio: 'ignore' });
for (let i = 0; i < 200 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 50));
const R = `127.0.0.1:${readFileSync(portFile, 'utf8').trim()}`;
await fetch(`http://${R}/_ctl`, { method: 'POST', body: JSON.stringify({ rate: 2000000 }) });

const t0 = Date.now();
const lap = (what) => { if (process.env.VERBOSE) console.log(what, Date.now() - t0, 'ms'); };
const srv = await startServer({ NOOK_MODELS: join(tmp, 'store'), NOOK_OFFLINE: '1', NOOK_PULL_MIN_PART: '65536',
  NOOK_OLLAMA_STORE: '', NOOK_ALLOW_PUSH: '1', NOOK_HOME: join(tmp, 'home') });
const ol = new Ollama({ host: srv.base });

try {
  // ---- pull, streamed: the progress objects as the client yields them ----
  const seen = [];
  for await (const p of await ol.pull({ model: `${R}/library/tiny`, insecure: true, stream: true })) seen.push(p);
  const statuses = seen.map((p) => p.status);
  check('pull: first is pulling manifest', statuses[0] === 'pulling manifest', statuses[0]);
  check('pull: last is success', statuses.at(-1) === 'success', statuses.at(-1));
  check('pull: writing manifest before success', statuses.at(-2) === 'writing manifest', statuses.at(-2));
  const layer = seen.filter((p) => p.digest === digest);
  check('pull: model layer progress objects', layer.length >= 3, `${layer.length}`);
  check('pull: layer status as Ollama ("pulling <12 hex>")',
    layer.filter((p) => p.status.startsWith('pulling')).every((p) => p.status === `pulling ${sha.slice(0, 12)}`));
  check('pull: total is the blob size', layer.every((p) => p.total === bytes.length), JSON.stringify(layer[0]));
  const done = layer.map((p) => p.completed);
  check('pull: completed never decreases', done.every((c, i) => i === 0 || c >= done[i - 1]), `${done}`);
  check('pull: completed within total', done.every((c) => c >= 0 && c <= bytes.length));
  check('pull: some progress in between', done.some((c) => c > 0 && c < bytes.length), `${done}`);
  check('pull: ends at total', done.at(-1) === bytes.length, `${done.at(-1)}`);
  check('pull: small layers reported too', new Set(seen.filter((p) => p.digest).map((p) => p.digest)).size >= 3);

  lap('again, whole');
  // again, whole: nothing left to fetch, one object
  const whole = await ol.pull({ model: `${R}/library/tiny`, insecure: true, stream: false });
  check('pull whole: success', whole.status === 'success', JSON.stringify(whole));
  await throws('pull unknown: the client throws the error', () => ol.pull({ model: `${R}/library/nosuch`, insecure: true }), /not found/);
  // a streamed error object: the client's iterator throws it, as with Ollama
  await throws('pull malicious, streamed: the iterator throws the error', async () => {
    for await (const p of await ol.pull({ model: `${R}/library/traverse`, insecure: true, stream: true })) void p;
  }, /invalid digest/);

  lap('list');
  // ---- list ----
  let l = await ol.list();
  const tiny = l.models.find((m) => m.name === `${R}/library/tiny:latest`);
  check('list: the pull', !!tiny, JSON.stringify(l));
  check('list: model, size, digest, modified_at', tiny && tiny.model === tiny.name && tiny.size > bytes.length &&
    /^[0-9a-f]{64}$/.test(tiny.digest) && !Number.isNaN(Date.parse(tiny.modified_at)), JSON.stringify(tiny));
  check('list: details from the registry config', tiny && tiny.details.format === 'gguf' && tiny.details.family === 'llama' &&
    tiny.details.families[0] === 'llama' && tiny.details.parameter_size === '260K', JSON.stringify(tiny?.details));

  // ---- show ----
  const sh = await ol.show({ model: `${R}/library/tiny` });
  check('show: system', sh.system === 'You are a test.', sh.system);
  check('show: parameters', /num_predict\s+4/.test(sh.parameters), sh.parameters);
  check('show: modelfile', /PARAMETER num_predict 4/.test(sh.modelfile));
  check('show: details', sh.details?.format === 'gguf');
  await throws('show unknown: throws', () => ol.show({ model: 'nosuch' }), /not found/);

  lap('create (JSON');
  // ---- create (JSON form) from an uploaded blob ----
  const head = await fetch(`${srv.base}/api/blobs/${digest}`, { method: 'HEAD' });
  check('blob HEAD after pull: present', head.status === 200, `${head.status}`);
  const other = Buffer.from(bytes); other[other.length - 1] ^= 0; // same bytes, a separate upload
  const up = await fetch(`${srv.base}/api/blobs/${digest}`, { method: 'POST', body: other });
  check('blob POST: 201', up.status === 201, `${up.status}`);
  const events = [];
  for await (const p of await ol.create({
    model: 'made', files: { 'stories.gguf': digest }, stream: true,
    template: '{{ if .System }}[S]{{ .System }}{{ end }}[U]{{ .Prompt }}[A]',
    system: 'Be short.', parameters: { temperature: 0, num_predict: 3, stop: ['x', 'y'] },
    messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }],
  })) events.push(p);
  check('create stream: success last', events.at(-1)?.status === 'success', JSON.stringify(events.at(-1)));
  check('create stream: several statuses', events.length >= 3, `${events.length}`);
  const made = await ol.show({ model: 'made' });
  check('create: system', made.system === 'Be short.', made.system);
  check('create: template kept', made.template.includes('{{ .Prompt }}'), made.template);
  check('create: parameters', /stop\s+"?x/.test(made.parameters) && /num_predict\s+3/.test(made.parameters), made.parameters);
  check('create: messages', JSON.stringify(made.messages) === '[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]',
    JSON.stringify(made.messages));
  // the created model answers through the same server with its template
  const g = await ol.generate({ model: 'made', prompt: 'Once upon a time', stream: false });
  check('create: generate with the created model', g.done === true && g.eval_count <= 3, JSON.stringify(g));

  lap('const q = await');
  const q = await ol.create({ model: 'made-q8', from: 'made', quantize: 'q8_0', stream: false });
  check('create quantize: success', q.status === 'success', JSON.stringify(q));
  const sq = await ol.show({ model: 'made-q8' });
  check('create quantize: Q8_0', sq.details?.quantization_level === 'Q8_0', JSON.stringify(sq.details));
  check('create from a name keeps the system', sq.system === 'Be short.', sq.system);
  await throws('create from a missing blob: throws', () => ol.create({ model: 'bad', stream: false,
    files: { 'x.gguf': 'sha256:' + '0'.repeat(64) } }), /not found/);
  await throws('create from a server path: refused', () => ol.create({ model: 'bad', from: '/etc/passwd', stream: false }), /./);

  lap('copy and');
  // ---- push (the server runs with NOOK_ALLOW_PUSH=1), then pull it back ----
  await ol.copy({ source: 'made', destination: `${R}/me/made:v1` });
  const pushed = [];
  for await (const p of await ol.push({ model: `${R}/me/made:v1`, insecure: true, stream: true })) pushed.push(p);
  check('push stream: success last', pushed.at(-1)?.status === 'success', JSON.stringify(pushed.at(-1)));
  check('push stream: the model layer with total and completed', pushed.some((p) => p.digest === digest &&
    p.total === bytes.length && p.completed === bytes.length), JSON.stringify(pushed.slice(0, 4)));
  await ol.delete({ model: `${R}/me/made:v1` });
  const back = await ol.pull({ model: `${R}/me/made:v1`, insecure: true, stream: false });
  check('pull of the pushed model', back.status === 'success', JSON.stringify(back));
  const sb = await ol.show({ model: `${R}/me/made:v1` });
  check('pushed model pulled back keeps its settings', sb.system === 'Be short.' && JSON.stringify(sb.messages) === JSON.stringify(made.messages));
  await ol.delete({ model: `${R}/me/made:v1` });
  await throws('push of an unknown model: throws', () => ol.push({ model: `${R}/me/nosuch:v1`, insecure: true }), /not found/);

  // ---- copy and delete ----
  const c = await ol.copy({ source: 'made', destination: 'made-copy' });
  check('copy: success', c.status === 'success');
  l = await ol.list();
  check('copy: listed', l.models.some((m) => m.name === 'made-copy:latest'), JSON.stringify(l.models.map((m) => m.name)));
  await throws('copy unknown: throws', () => ol.copy({ source: 'nosuch', destination: 'x' }), /not found/);
  for (const m of ['made', 'made-q8', 'made-copy', `${R}/library/tiny`]) {
    const d = await ol.delete({ model: m });
    check(`delete ${m}`, d.status === 'success');
  }
  await throws('delete again: throws', () => ol.delete({ model: 'made' }), /not found/);
  l = await ol.list();
  check('list empty after deletes', l.models.length === 0, JSON.stringify(l.models.map((m) => m.name)));
  const gone = await fetch(`${srv.base}/api/blobs/${digest}`, { method: 'HEAD' });
  check('delete collected the blob', gone.status === 404, `${gone.status}`);
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
} finally {
  await srv.stop();
  reg.kill();
  rmSync(tmp, { recursive: true, force: true });
}
done(`store.mjs: `);
