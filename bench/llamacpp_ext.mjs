#!/usr/bin/env node
// llamacpp_ext.mjs - the llama.cpp reference (../shared/tools/ref/llamacpp.mjs, same
// node-llama-cpp 3.21.1 from $LLAMACPP_REF, same UV_THREADPOOL_SIZE=1 re-run) extended
// with what issue 9 compares against:
//
//   node bench/llamacpp_ext.mjs batched -m MODEL.gguf --threads 2 --parallel 1,2,4,8 --tg 64 --reps 2
//       P sequences of one context generating together: node-llama-cpp queues the
//       sequences' evaluations and its batch dispatcher decodes them in one
//       llama_decode per step (batchingDispatchSchedule "nextCycle"). Each sequence
//       starts from BOS and generates tg greedy tokens; tg_tps is the summed rate
//       (P * tg tokens over the wall time), one JSON line per level with --json.
//   node bench/llamacpp_ext.mjs embed -m MODEL.gguf --texts FILE [--reps N]
//       llama.cpp's embeddings (createEmbeddingContext: the model's pooling_type, the
//       pooled vector of llama_get_embeddings_seq, or the last token's with pooling
//       none; raw, not normalised) of each line of FILE, tokenized as node-llama-cpp
//       does (no special-token parsing, BOS/EOS as the vocabulary asks). Prints JSON:
//       {pooling, n_embd, texts: [{text, tokens, embedding}], texts_per_s}; with --plain,
//       two lines per text: "T id,id,..." and "E v,v,..." (the goldens' format).
//   node bench/llamacpp_ext.mjs depth -m MODEL.gguf --threads 2 --depth 16384 --tg 32 --batch 2048 --reps 2
//       Issue 17's two figures from one fill, as `nook bench -d DEPTH --fill-batch B` takes
//       them: the cache filled once with BOS and DEPTH-1 pseudo-random tokens in batches
//       of B (n_batch = n_ubatch = B), timed: fill_tps is prompt processing of DEPTH
//       tokens into an empty cache; then one untimed warm-up of tg greedy decodes and reps
//       timed ones (tg_tps, the median), each after the cache is cut back to DEPTH, as
//       llama-bench's -d measures tg. At 16,384 tokens a fill takes minutes here; the
//       shared tool's `bench --depth` fills before every run, its warm-up included.
//
// Common: --threads N (default 2), --ctx N, --json.
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {performance} from "node:perf_hooks";
import {pathToFileURL} from "node:url";

if (process.env.UV_THREADPOOL_SIZE === undefined) {
    const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)],
        {stdio: "inherit", env: {...process.env, UV_THREADPOOL_SIZE: "1"}});
    process.exit(r.status ?? 1);
}

function parseArgs(argv) {
    const o = {_: []};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a.startsWith("--") || (a.startsWith("-") && a.length === 2 && isNaN(Number(a)))) {
            const k = a.replace(/^--?/, "");
            const nxt = argv[i + 1];
            if (nxt === undefined || (nxt.startsWith("-") && nxt.length > 1 && isNaN(Number(nxt)))) o[k] = true;
            else { o[k] = nxt; i++; }
        } else o._.push(a);
    }
    return o;
}

const args = parseArgs(process.argv.slice(2));
const cmd = args._[0];
const modelPath = args.m ?? args.model;
const threads = Number(args.threads ?? args.t ?? 2);
const log = (...x) => console.error(...x);
if (!cmd || !modelPath) {
    const src = fs.readFileSync(new URL(import.meta.url), "utf8").split("\n");
    const end = src.findIndex((l, i) => i > 0 && !l.startsWith("//"));
    console.error(src.slice(1, end).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
    process.exit(2);
}

async function importNlc() {
    if (process.env.LLAMACPP_REF) {
        const p = path.join(process.env.LLAMACPP_REF, "node_modules", "node-llama-cpp", "dist", "index.js");
        return await import(pathToFileURL(p).href);
    }
    return await import("node-llama-cpp");
}

const {getLlama, LlamaLogLevel} = await importNlc();
const llama = await getLlama({gpu: false, build: "never", maxThreads: 0, logLevel: LlamaLogLevel.error,
    logger: (level, msg) => { if (args.verbose) process.stderr.write(String(msg)); }, progressLogs: false});
const model = await llama.loadModel({modelPath: path.resolve(modelPath), gpuLayers: 0, useMmap: true});

function median(a) {
    const s = [...a].sort((x, y) => x - y);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

try {
    if (cmd === "batched") {
        const tg = Number(args.tg ?? 64), reps = Number(args.reps ?? 2);
        const levels = String(args.parallel ?? "1,2,4,8").split(",").map(Number);
        const bos = model.tokens.bos ?? 0;
        for (const P of levels) {
            const ctx = await model.createContext({contextSize: P * (tg + 16), batchSize: Math.max(P, 16), sequences: P,
                threads: {ideal: threads, min: threads}, ignoreMemorySafetyChecks: true});
            const seqs = Array.from({length: P}, () => ctx.getSequence());
            const gen = async (seq) => {
                await seq.clearHistory();
                let n = 0;
                for await (const t of seq.evaluate([bos], {temperature: 0, yieldEogToken: true})) {
                    if (++n >= tg) break;
                }
                return n;
            };
            const run = async () => {
                const t0 = performance.now();
                const ns = await Promise.all(seqs.map(gen));
                const ms = performance.now() - t0;
                if (ns.some((n) => n !== tg)) throw new Error("short generation");
                return P * tg * 1000 / ms;
            };
            await run();   // warm-up
            const tps = [];
            for (let r = 0; r < reps; r++) {
                tps.push(await run());
                log(`parallel ${P} rep ${r + 1}/${reps}: ${tps.at(-1).toFixed(2)} t/s`);
            }
            const res = {model: path.basename(modelPath), runtime: "llama.cpp", threads, parallel: P, tg, reps,
                tg_tps: +median(tps).toFixed(3), tg_tps_all: tps.map((x) => +x.toFixed(3))};
            console.log(args.json ? JSON.stringify(res) : `llama.cpp parallel ${P}: ${res.tg_tps} t/s summed`);
            await ctx.dispose();
        }
    } else if (cmd === "depth") {
        const depth = Number(args.depth ?? 4096), tg = Number(args.tg ?? 32), reps = Number(args.reps ?? 2);
        const batch = Number(args.batch ?? 2048);
        if (!(depth >= 1) || !(tg >= 1) || !(reps >= 1) || !(batch >= 1)) throw new Error("depth, tg, reps and batch must be positive");
        const fa = args.fa === undefined || args.fa === "auto" ? "auto" : (args.fa === "on" || args.fa === "1" || args.fa === true);
        const ctx = await model.createContext({contextSize: Number(args.ctx ?? depth + tg + 16), batchSize: batch, sequences: 1,
            threads: {ideal: threads, min: threads}, flashAttention: fa, ignoreMemorySafetyChecks: true});
        const seq = ctx.getSequence();
        let seed = 12345;
        const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
        const vocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens;
        if (!Array.isArray(vocab)) throw new Error("the model's metadata has no tokenizer.ggml.tokens");
        const V = vocab.length;
        const randTokens = (n) => Array.from({length: n}, () => Math.floor(rnd() * V));
        const bos = model.tokens.bos ?? 0;
        const fillToks = [bos, ...randTokens(depth - 1)];
        const t0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(fillToks);
        const fillMs = performance.now() - t0;
        if (seq.nextTokenIndex !== depth) throw new Error(`fill left ${seq.nextTokenIndex} tokens, not ${depth}`);
        log(`fill: ${depth} tokens in ${(fillMs / 1000).toFixed(1)} s (${(depth * 1000 / fillMs).toFixed(2)} t/s)`);
        const runTG = async () => {
            if (seq.nextTokenIndex > depth) await seq.eraseContextTokenRanges([{start: depth, end: seq.nextTokenIndex}]);
            const t1 = performance.now();
            let n = 0;
            for await (const t of seq.evaluate(randTokens(1), {temperature: 0, yieldEogToken: true})) {
                void t;
                if (++n >= tg) break;
            }
            if (n !== tg) throw new Error("short generation");
            return performance.now() - t1;
        };
        await runTG();   // warm-up
        const tps = [];
        for (let r = 0; r < reps; r++) {
            tps.push(tg * 1000 / await runTG());
            log(`depth ${depth} rep ${r + 1}/${reps}: tg${tg} ${tps.at(-1).toFixed(2)} t/s`);
        }
        const res = {model: path.basename(modelPath), runtime: "llama.cpp", threads, depth, tg, reps, fill_batch: batch,
            fill_ms: +fillMs.toFixed(1), fill_tps: +(depth * 1000 / fillMs).toFixed(3),
            tg_tps: +median(tps).toFixed(3), tg_tps_all: tps.map((x) => +x.toFixed(3))};
        console.log(args.json ? JSON.stringify(res) : `llama.cpp depth ${depth}: fill ${res.fill_tps} t/s, tg${tg} ${res.tg_tps} t/s`);
        await ctx.dispose();
    } else if (cmd === "embed") {
        const texts = fs.readFileSync(String(args.texts), "utf8").split("\n").filter((l) => l.length > 0);
        const reps = Number(args.reps ?? 1);
        const ectx = await model.createEmbeddingContext({contextSize: Number(args.ctx ?? 512), batchSize: 512,
            threads: {ideal: threads, min: threads}, ignoreMemorySafetyChecks: true});
        const toTokens = (text) => {
            const t = model.tokenize(text, false);
            if (model.tokens.shouldPrependBosToken && model.tokens.bos != null && t[0] !== model.tokens.bos) t.unshift(model.tokens.bos);
            if (model.tokens.shouldAppendEosToken && model.tokens.eos != null && t.at(-1) !== model.tokens.eos) t.push(model.tokens.eos);
            return t;
        };
        const out = [];
        let best = Infinity;
        for (let r = 0; r < reps; r++) {
            const t0 = performance.now();
            out.length = 0;
            for (const text of texts) {
                const tokens = toTokens(text);
                const e = await ectx.getEmbeddingFor(tokens.slice());
                out.push({text, tokens, embedding: e.vector.map((x) => +x.toPrecision(9))});
            }
            best = Math.min(best, performance.now() - t0);
        }
        const md = model.fileInfo.metadata;
        const arch = md.general?.architecture;
        if (args.plain) {   // goldens for tests/model/model_embed.c: per text "T ids" and "E values"
            for (const o of out) console.log(`T ${o.tokens.join(",")}\nE ${o.embedding.join(",")}`);
        } else console.log(JSON.stringify({model: path.basename(modelPath), pooling_type: md[arch]?.pooling_type ?? null,
            n_embd: out[0]?.embedding.length, texts: out, texts_per_s: +(texts.length * 1000 / best).toFixed(3)}));
        await ectx.dispose();
    } else {
        throw new Error(`unknown command ${cmd}`);
    }
} finally {
    await model.dispose();
    await llama.dispose();
}
