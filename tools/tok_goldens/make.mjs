#!/usr/bin/env node
// make.mjs: tokenize every corpus string with llama.cpp (node-llama-cpp, vocabOnly) on
// each given vocab-only GGUF and write the goldens. Called by make.sh (see there).
//
//   LLAMACPP_REF=/tmp/ref node make.mjs CORPUS.txt OUTDIR family=VOCAB.gguf ...
//
// Writes OUTDIR/<family>.special-0.out (parse_special = false) and
// OUTDIR/<family>.special-1.out (parse_special = true): one line per corpus string, the
// ids each preceded by a space, as llama.cpp's .out files. add_special is false in both
// (node-llama-cpp's tokenize calls common_tokenize(vocab, text, false, parse_special)).
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const ref = process.env.LLAMACPP_REF;
const mod = ref ? pathToFileURL(path.join(ref, "node_modules/node-llama-cpp/dist/index.js")).href : "node-llama-cpp";
const {getLlama} = await import(mod);

const [corpusPath, outDir, ...pairs] = process.argv.slice(2);
if (!corpusPath || !outDir || pairs.length === 0) {
    console.error("usage: make.mjs CORPUS.txt OUTDIR family=VOCAB.gguf ...");
    process.exit(2);
}
const texts = fs.readFileSync(corpusPath, "utf8").split("\n__ggml_vocab_test__\n");
if (texts.pop() !== "") throw new Error(`${corpusPath}: does not end with the separator`);

const llama = await getLlama({gpu: false, build: "never"});
for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`bad argument ${pair}: want family=VOCAB.gguf`);
    const family = pair.slice(0, eq), gguf = pair.slice(eq + 1);
    const model = await llama.loadModel({modelPath: path.resolve(gguf), vocabOnly: true, gpuLayers: 0});
    const md = model.fileInfo.metadata;
    console.log(`${family}: ${gguf}: model ${md.tokenizer?.ggml?.model}, pre ${md.tokenizer?.ggml?.pre}, ` +
        `n_tokens ${md.tokenizer?.ggml?.tokens?.length}`);
    for (const special of [false, true]) {
        let lines = "", n = 0;
        for (const t of texts) {
            const ids = Array.from(model.tokenize(t, special));
            n += ids.length;
            lines += ids.map((id) => " " + id).join("") + "\n";
        }
        const out = path.join(outDir, `${family}.special-${special ? 1 : 0}.out`);
        fs.writeFileSync(out, lines);
        console.log(`  ${out}: ${texts.length} strings, ${n} tokens`);
    }
    await model.dispose();
}
