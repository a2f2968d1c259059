#!/usr/bin/env node
// corpus.mjs: write the tokenizer parity corpus, tests/data/tokenizer/corpus/corpus.txt.
//
//   node tools/tok_goldens/corpus.mjs WAR_AND_PEACE.txt OUT.txt
//
// The strings live here, as JavaScript literals, so that invisible characters (tabs,
// \r\n, trailing spaces, ZWJ, combining marks, NBSP) are visible in review; the .txt is
// generated and committed. Format: every string followed by "\n__ggml_vocab_test__\n",
// as llama.cpp's tests/test-tokenizer-0 .inp files. The last few strings are passages of
// War and Peace (the shared fixture models/tokenizers/war-and-peace.txt, public domain).
// All strings are valid UTF-8 (node-llama-cpp passes JavaScript strings) with no NUL.
// Order is significant: the goldens have one line per string, in this order.
import fs from "node:fs";

const [wpPath, outPath] = process.argv.slice(2);
if (!wpPath || !outPath) {
    console.error("usage: corpus.mjs WAR_AND_PEACE.txt OUT.txt");
    process.exit(2);
}

const S = [
    // ---- trivial and empty
    "",
    "Hello world",
    " Hello world",
    "hello, WORLD! How's it going?",

    // ---- code
    "#include <stdio.h>\n\nint main(void) {\n    printf(\"Hello, %s!\\n\", \"world\");\n    return 0;\n}\n",
    "static inline uint32_t nk_hash(const char *s, size_t n) {\n\tuint32_t h = 2166136261u;\n\tfor (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;\n\treturn h;\n}",
    "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint([fib(i) for i in range(10)])  # [0, 1, 1, 2, ...]\n",
    "class Foo(object):\n\tdef __init__(self):\n\t\tself._x = {'a': 1, \"b\": [2, 3.5, None]}\n\n\tdef __repr__(self): return f\"Foo({self._x!r})\"",
    "{\"name\": \"nook\", \"version\": \"0.1.0\", \"tags\": [\"llm\", \"c11\"], \"nested\": {\"pi\": 3.14159, \"ok\": true, \"nil\": null}}",
    "{\n  \"model\": \"qwen3\",\n  \"messages\": [\n    {\"role\": \"user\", \"content\": \"hi\\n\\tthere\"}\n  ]\n}",
    "#!/bin/sh\nset -eu\nfor f in *.gguf; do\n\tif [ -s \"$f\" ]; then\n\t\techo \"$f: $(wc -c < \"$f\") bytes\" >&2\n\tfi\ndone | sort -k2 -n && exit 0",
    "SELECT id, name FROM users WHERE age >= 18 AND email LIKE '%@example.com' ORDER BY name DESC LIMIT 10;",
    "<html><body><h1>Title</h1><table><tr><td>a&amp;b</td></tr></table><br/></body></html>",
    "fn main() { let v: Vec<u8> = (0..=255).collect(); println!(\"{:?}\", &v[..4]); } // rust ::<>",
    "x+=1;y-=2;z*=3;w/=4;a<<=1;b>>=2;c&&d||!e;f->g;h::i;j=>k;l!==m;n===o;p**q;r??s",

    // ---- CJK
    "我们今天去公园散步，天气很好。你吃饭了吗？",
    "東京は日本の首都です。ひらがな、カタカナ、漢字を混ぜて書きます。ｶﾀｶﾅ（半角）も。",
    "안녕하세요, 세계! 한국어 텍스트를 토큰화합니다.",
    "中文English混合mixed日本語テキスト한국어text",
    "𠀀𠀁𪚥 CJK Extension B and 〇〡〢 and 　ideographic　space",

    // ---- emoji
    "I love pizza 🍕🍕🍕 and 🦙 llamas! 😀😃😄😁",
    "Family: 👨‍👩‍👧‍👦 Couple: 👩‍❤️‍💋‍👨 Pro: 🧑‍💻 👩🏽‍🚀",
    "Skin tones: 👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿 👋🏿",
    "Flags: 🇺🇸 🇯🇵 🇩🇪 🇧🇷 🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏳️‍🌈",
    "Keycaps 1️⃣ #️⃣ and variation ☺︎ ☺️ ❤ ❤️ ✔️",

    // ---- numbers
    "1234567890123456789012345678901234567890",
    "3.14159265358979 2.718281828 -0.5 +42 1e-10 6.022e23 0x1F 0b1010 0o777",
    "Population: 1,234,567 (2023); budget $12,345,678.90; 99.9% uptime",
    "Dates: 2024-01-15, 15/01/2024, 01.15.2024, 12:30:45, 2024-01-15T12:30:45Z",
    "7 77 777 7777 77777 777777 7777777 a1b22c333d4444",
    "Unicode digits: ١٢٣٤ ४५६ １２３ ½ ¾ ① ② ³ ⁴",

    // ---- whitespace
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n\n\n",
    "\t\t\t\tfour tabs",
    "a                    b",
    "trailing spaces   ",
    "    leading spaces",
    "line one\r\nline two\r\n\r\nline four\r\n",
    " \n \n\t\n  \t  \n",
    "mixed\t \t tabs and\u00a0nbsp\u2009thin\u200bzero\u3000wide\u000bvt\u000cff",
    "\n\n   Hello\n\n\n   World   \n",

    // ---- accents, combining marks, Latin extended
    "Café naïve résumé façade jalapeño Øresund Ærøskøbing straße",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 (combining marks) a\u0300\u0301\u0302\u0303\u0304",
    "Tiếng Việt có nhiều dấu: người, được, những, Nguyễn Thị Minh Khai",
    "ŁÓDŹ Żółć Ğüşöçİ ı ǅ ǈ ǋ ẞ ß ﬁ ﬂ Ω Å K",
    "\u0301 starts with a combining mark",

    // ---- other scripts
    "مرحبا بالعالم! هذه جملة باللغة العربية. ١٢٣",
    "שלום עולם! זהו משפט בעברית.",
    "नमस्ते दुनिया! हिन्दी में लिखा गया वाक्य। क्षत्रिय",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Привет, мир! Ёжик в тумане. Ελληνικά: Καλημέρα κόσμε.",
    "English العربية עברית हिन्दी ไทย 中文 Русский mixed in one line",
    "𝕳𝖊𝖑𝖑𝖔 𝐁𝐨𝐥𝐝 ℌ𝔢𝔩𝔩𝔬 ＦＵＬＬＷＩＤＴＨ",

    // ---- apostrophes and contractions
    "I'm, you're, he's, she'll, we've, they'd, it's, don't, can't, won't",
    "I'M, YOU'RE, HE'S, SHE'LL, WE'VE, THEY'D, IT'S, DON'T, JOHN'S, 'S 'LL 'T",
    "It'S WhO'lL tHeY'rE 'sup' ''double'' o'clock y'all",
    "curly: don’t, it’s, ‘quoted’, “double” — dash – ndash … ellipsis",

    // ---- special-token-looking text in user content
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text</s><s>more</s><eos><pad><unk>",
    "Say <|endoftext|> then <|im_start|> and <|eot_id|> literally",
    " <|im_start|> spaced <|im_end|> \n <start_of_turn> \n<end_of_turn>\n",
    "<|im_start|><|im_start|><|im_end|>",
    "<|im_start|user <|eot_id <start_of_turn <|endoftext|",
    "<think>\nreasoning\n</think>\n\nanswer <tool_call>{\"x\":1}</tool_call>",
    "<start_of_image><end_of_image><|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",

    // ---- odd characters
    "ÿþ\u0001\u007f\u0080\u009f control chars and \ufeffBOM and \ufffd replacement",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!???...,,,;;;:::---___===+++***&&&|||~~~```'''\"\"\"",
    "https://example.com/path?q=1&lang=en#frag user@mail.example.org C:\\Windows\\System32",
    "$$E = mc^2$$ and \\frac{a}{b} + \\sum_{i=0}^{n} x_i^2 \\leq \\infty",

    // ---- pre-tokenizer corner cases
    "a\rb\r\rc\r\n\r\nd\n\re",
    "Unicode spaces:\u0085nel\u1680ogham\u2028ls\u2029ps\u202fnnbsp\u205fmmsp\u180emvs end",
    "it'ſ, IT'K, it\u2019S, it`s, l'homme, L'ÉTAT, aujourd'hui, rock'n'roll",
    "Roman ⅫⅣⅷ, superscripts x²³, fractions ⅓⅔, circled ⑩⑳, tally 𝍷",
    "abc<|im_start|>def<|im_end|>ghi <|eot_id|>jkl<start_of_turn>mno<eos>pqr",
    "<|reserved_special_token_0|><|reserved_special_token_250|><|finetune_right_pad_id|><|python_tag|>",
    " ".repeat(200) + "x" + "\n".repeat(50) + "y" + "\t".repeat(30) + "z",
    "QmFzZTY0IGJsb2IgdGhhdCBoYXMgbm8gc3BhY2VzIGF0IGFsbA==".repeat(30),
    "0123456789".repeat(40),
    "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd Hebrew points, \u0627\u064e\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629 Arabic harakat, \u0915\u093c\u094d\u200d Indic ZWJ",
];

// War and Peace: one paragraph, a longer passage, and a long run of text.
const wp = fs.readFileSync(wpPath, "utf8").replace(/\r\n/g, "\n");
const paras = wp.split("\n\n").filter((p) => p.trim().length > 0);
const para = (i) => {
    if (i >= paras.length) throw new Error(`war-and-peace.txt has only ${paras.length} paragraphs`);
    return paras[i];
};
S.push(para(1));                                   // "Well, Prince, so Genoa and Lucca ..."
S.push(para(40));
S.push(paras.slice(2, 12).join("\n\n"));           // ~3-4 KB with blank lines
S.push(paras.slice(100, 140).join("\n\n"));         // ~10 KB

for (const s of S) {
    if (s.includes("\n__ggml_vocab_test__\n")) throw new Error("string contains the separator");
    if (s.includes("\u0000")) throw new Error("string contains NUL");
}
fs.writeFileSync(outPath, S.map((s) => s + "\n__ggml_vocab_test__\n").join(""));
console.log(`${outPath}: ${S.length} strings, ${Buffer.byteLength(fs.readFileSync(outPath))} bytes`);
