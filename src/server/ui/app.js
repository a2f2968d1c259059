// app.js: nook's local page. Plain JavaScript, no framework, nothing fetched from anywhere
// but this server (the server's Content-Security-Policy enforces it: connect-src 'self').
// It speaks the same Ollama API every other client uses: GET /api/tags, POST /api/chat
// (streamed NDJSON), and reads the egress ledger from GET /api/audit.
'use strict';

const $ = (id) => document.getElementById(id);
const conversation = [];          // [{role, content}] of the current chat
let running = null;               // AbortController of the answer being streamed

// The writing tasks: one instruction each, sent as the system message with the draft as
// the user's. The task's name also goes to the router ("route": {"task": ...}), so
// thresholds calibrated per task (nook route calibrate) apply.
const TASKS = {
  summarize: 'Summarize the text the user gives in one or two sentences. Reply with the summary only.',
  tighten: 'Tighten the text the user gives: keep its meaning and voice, cut every word it does not need. ' +
           'Reply with the revised text only.',
  name: 'Suggest one short, descriptive name for what the user gives (a title for prose, an identifier for ' +
        'code). Reply with the name only.',
  split: 'Split the notes the user gives into separate, self-contained items, one per line, each starting ' +
         'with "- ". Reply with the list only.',
};

// ---- talking to the server -------------------------------------------------------------

// fetch with the API key when the server wants one (asked once, kept for this tab only).
async function api(path, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const key = sessionStorage.getItem('nook-key');
    const headers = { ...(opts.headers || {}) };
    if (key) headers.Authorization = `Bearer ${key}`;
    const res = await fetch(path, { ...opts, headers });
    if (res.status !== 401 || attempt > 0) return res;
    const k = window.prompt('This server needs its API key (NOOK_API_KEY):');
    if (!k) return res;
    sessionStorage.setItem('nook-key', k);
  }
}

async function errorText(res) {
  try {
    const j = await res.json();
    return typeof j.error === 'string' ? j.error : (j.error && j.error.message) || res.statusText;
  } catch { return `${res.status} ${res.statusText}`; }
}

function chosenModel() {
  return $('model-path').value.trim() || $('model').value;
}

async function loadModels() {
  const sel = $('model');
  try {
    const res = await api('/api/tags');
    if (!res.ok) throw new Error(await errorText(res));
    const { models = [] } = await res.json();
    sel.replaceChildren();
    for (const m of models) sel.append(new Option(m.name, m.name));
    if (!models.length) sel.append(new Option('(no models: nook pull NAME)', ''));
    const saved = localStorage.getItem('nook-model');
    if (saved && models.some((m) => m.name === saved)) sel.value = saved;
  } catch (e) {
    setStatus(`could not list models: ${e.message}`);
  }
}

// Streams one /api/chat answer into the bubble `view` (see bubble()); returns the final
// chunk (with "route" when the server's router answered) or throws.
async function streamChat(messages, view, task) {
  const body = { model: chosenModel(), messages, stream: true };
  if ($('think').checked) body.think = true;
  const options = {};
  if ($('num-predict').value) options.num_predict = Number($('num-predict').value);
  if ($('temperature').value) options.temperature = Number($('temperature').value);
  if (Object.keys(options).length) body.options = options;
  const policy = $('policy').value;
  if (policy || task) body.route = { ...(policy && { policy }), ...(task && { task }) };
  running = new AbortController();
  const res = await api('/api/chat', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body), signal: running.signal,
  });
  if (!res.ok) throw new Error(await errorText(res));
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '', last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const chunk = JSON.parse(line);
      if (chunk.error) throw new Error(chunk.error);
      const m = chunk.message || {};
      if (m.thinking) view.think(m.thinking);
      if (m.content) view.text(m.content);
      if (chunk.done) last = chunk;
    }
  }
  return last;
}

// ---- the conversation view ------------------------------------------------------------

function setStatus(s) { $('status').textContent = s; }

function addMessage(role, text, label) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  if (label) {
    const t = document.createElement('span');
    t.className = 'task';
    t.textContent = label;
    div.append(t);
  }
  div.append(document.createTextNode(text));
  $('log').append(div);
  div.scrollIntoView({ block: 'end' });
  return div;
}

// An assistant bubble filled while streaming: thinking apart (dimmed, folded once the
// answer starts), the answer, and the router's decision under it.
function bubble() {
  const div = addMessage('assistant', '');
  const answer = document.createElement('span');
  answer.className = 'answer';
  div.append(answer);
  let details = null, thought = null;
  return {
    div,
    think(s) {
      if (!details) {
        details = document.createElement('details');
        details.className = 'thinking';
        details.open = true;
        const sum = document.createElement('summary');
        sum.textContent = 'thinking';
        thought = document.createElement('div');
        details.append(sum, thought);
        div.insertBefore(details, answer);
      }
      thought.textContent += s;
    },
    text(s) {
      if (details) details.open = false;
      answer.textContent += s;
      div.scrollIntoView({ block: 'end' });
    },
    content() { return answer.textContent; },
    route(final) {
      const r = document.createElement('span');
      r.className = 'route';
      r.textContent = describeRoute(final);
      if (final && final.route && final.route.target !== 'local') r.classList.add('remote');
      div.append(r);
    },
  };
}

const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v));

// "route: local (policy local: ...) · mean entropy 1.234 · ..." from the final chunk.
function describeRoute(final) {
  if (!final) return 'route: (the answer ended without a final message)';
  const r = final.route;
  const tokens = `${final.eval_count ?? '?'} tokens`;
  if (!r) return `route: local (this server sent no route object) · ${tokens}`;
  const parts = [`route: ${r.target}`, `policy ${r.policy}`];
  if (r.reason) parts.push(`why: ${r.reason}`);
  const s = r.signals || {};
  for (const k of ['mean_entropy', 'mean_logprob', 'min_logprob', 'first_entropy']) {
    if (typeof s[k] === 'number') parts.push(`${k.replace('_', ' ')} ${fmt(s[k])}`);
  }
  if (typeof r.p_ok === 'number') parts.push(`P(ok) ${fmt(r.p_ok)}`);
  if (typeof r.threshold === 'number') parts.push(`threshold ${fmt(r.threshold)}`);
  if (r.audit_id) parts.push(`ledger ${r.audit_id}`);
  parts.push(tokens);
  return parts.join(' · ');
}

async function run(messages, label, task, onAnswer) {
  if (running) return;
  if (!chosenModel()) { setStatus('choose a model first'); return; }
  $('send').disabled = true;
  $('stop').disabled = false;
  setStatus('answering…');
  const view = bubble();
  try {
    const final = await streamChat(messages, view, task);
    view.route(final);
    if (onAnswer) onAnswer(view.content());
    setStatus('');
  } catch (e) {
    if (e.name === 'AbortError') { view.route(null); setStatus('stopped'); }
    else { view.div.classList.add('error'); view.text(e.message); setStatus(''); }
  } finally {
    running = null;
    $('send').disabled = false;
    $('stop').disabled = true;
  }
}

function send() {
  const text = $('prompt').value;
  if (!text.trim() || running) return;
  $('prompt').value = '';
  addMessage('user', text);
  conversation.push({ role: 'user', content: text });
  run(conversation.slice(), null, null, (answer) => conversation.push({ role: 'assistant', content: answer }));
}

function runTask(task) {
  const draft = $('draft').value;
  if (!draft.trim()) { $('draft').focus(); return; }
  showPane('pane-chat');
  const label = task[0].toUpperCase() + task.slice(1);
  addMessage('user', draft, label);
  run([{ role: 'system', content: TASKS[task] }, { role: 'user', content: draft }], label, task, null);
}

// ---- the ledger view -----------------------------------------------------------------

async function loadLedger() {
  const verdict = $('ledger-verdict');
  const body = $('ledger').tBodies[0];
  body.replaceChildren();
  try {
    const res = await api('/api/audit');
    if (!res.ok) throw new Error(await errorText(res));
    const l = await res.json();
    verdict.classList.toggle('bad', !l.ok);
    verdict.textContent = l.ok
      ? `chain verified: ${l.lines} lines, ${l.egress} sent, ${l.pending} pending, ${l.pull} downloads`
      : `THE CHAIN IS BROKEN: ${l.problem}`;
    for (const e of l.entries.slice().reverse()) {
      const tr = body.insertRow();
      const why = [e.policy, e.reason].filter(Boolean).join(': ') || (e.kind === 'complete' ? `status ${e.status}` : '');
      const cells = [e.time, e.kind, e.host ?? '', e.model ?? e.what ?? '', why, e.bytes ?? '',
                     (e.body_sha256 || e.response_sha256 || '').slice(0, 16)];
      cells.forEach((c, i) => {
        const td = tr.insertCell();
        td.textContent = String(c);
        if (i === 6) td.className = 'hash';
      });
    }
    if (!l.entries.length) body.insertRow().insertCell().textContent = 'Nothing has left this machine.';
  } catch (e) {
    verdict.textContent = `could not read the ledger: ${e.message}`;
  }
}

// ---- wiring -------------------------------------------------------------------------------

function showPane(id) {
  for (const p of document.querySelectorAll('.pane')) p.classList.toggle('on', p.id === id);
  for (const t of document.querySelectorAll('.tab')) t.classList.toggle('on', t.dataset.pane === id);
  if (id === 'pane-ledger') loadLedger();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const t of document.querySelectorAll('.tab')) t.addEventListener('click', () => showPane(t.dataset.pane));
  $('ask').addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
  $('prompt').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); send(); }
  });
  $('stop').addEventListener('click', () => running && running.abort());
  $('clear').addEventListener('click', () => { conversation.length = 0; $('log').replaceChildren(); });
  $('model').addEventListener('change', () => localStorage.setItem('nook-model', $('model').value));
  for (const b of document.querySelectorAll('#tasks button')) b.addEventListener('click', () => runTask(b.dataset.task));
  $('ledger-refresh').addEventListener('click', loadLedger);
  loadModels();
});
