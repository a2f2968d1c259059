#!/usr/bin/env node
// check_vocab.mjs: load a vocab-only GGUF in llama.cpp (node-llama-cpp, vocabOnly) and
// run llama.cpp's tokenizer test vectors (X.inp/X.out, tests/test-tokenizer-0 format:
// add_special = false, parse_special = false) or tokenize given texts.
//
//   LLAMACPP_REF=/tmp/ref node tools/import_tokenizer/check_vocab.mjs VOCAB.gguf VECTORS.inp
//   LLAMACPP_REF=/tmp/ref node tools/import_tokenizer/check_vocab.mjs VOCAB.gguf --text "..." [--special]
//
// The shared tools/ref/llamacpp.mjs cannot open vocab-only files (it loads weights);
// this one only needs the vocabulary. Exit 0 when every vector matches.
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const ref = process.env.LLAMACPP_REF;
const mod = ref ? pathToFileURL(path.join(ref, "node_modules/node-llama-cpp/dist/index.js")).href : "node-llama-cpp";
const {getLlama} = await import(mod);

const [gguf, second, ...rest] = process.argv.slice(2);
if (!gguf || !second) {
    console.error("usage: check_vocab.mjs VOCAB.gguf VECTORS.inp | --text TEXT [--special]");
    process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: path.resolve(gguf), vocabOnly: true, gpuLayers: 0});
const md = model.fileInfo.metadata;
console.log(`loaded ${gguf}: arch ${md.general?.architecture}, model ${md.tokenizer?.ggml?.model}, ` +
    `pre ${md.tokenizer?.ggml?.pre}, n_tokens ${md.tokenizer?.ggml?.tokens?.length}, ` +
    `bos ${model.tokens.bos}, eos ${model.tokens.eos}, add_bos ${model.tokens.shouldPrependBosToken}`);

if (second === "--text") {
    const text = rest[0] ?? "";
    const toks = Array.from(model.tokenize(text, rest.includes("--special")));
    console.log(JSON.stringify(toks));
    process.exit(0);
}
const inp = fs.readFileSync(second, "utf8").split("\n__ggml_vocab_test__\n");
inp.pop();
const outPath = second.replace(/\.inp$/, ".out");
const out = fs.readFileSync(outPath, "utf8").split("\n");
let fail = 0;
inp.forEach((text, i) => {
    const want = out[i].trim() === "" ? [] : out[i].trim().split(/\s+/).map(Number);
    const got = Array.from(model.tokenize(text, false));
    if (JSON.stringify(got) !== JSON.stringify(want)) {
        fail++;
        console.log(`FAIL ${i} ${JSON.stringify(text)}\n  want ${JSON.stringify(want)}\n  got  ${JSON.stringify(got)}`);
    }
});
console.log(`${inp.length - fail}/${inp.length} vectors match`);
await model.dispose();
process.exit(fail ? 1 : 0);
