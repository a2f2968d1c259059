#!/usr/bin/env python3
"""Render every chat template in tests/data/chat/templates against every conversation in
tests/data/chat/conversations with Python jinja2 configured exactly as Hugging Face's
apply_chat_template configures it, and write the goldens tests/chat/test_templates.c checks.

HF (transformers/utils/chat_template_utils.py, _compile_jinja_template):
  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[AssistantTracker, jinja2.ext.loopcontrols])
  filters["tojson"] = json.dumps(x, ensure_ascii=False, indent, separators, sort_keys=False)
  globals["raise_exception"] -> TemplateError(message)
  globals["strftime_now"](fmt) -> datetime.now().strftime(fmt)
and renders with messages=..., tools=... (None when absent), documents=None,
add_generation_prompt=..., **kwargs (the tokenizer's special tokens plus template kwargs).

Here strftime_now reads a fixed time from the conversation ("now": [Y, M, D, h, m, s]) so the
goldens are reproducible; the C test passes the same time.

Output: goldens/<template>__<conversation>.txt (the rendered bytes) or .err (jinja2 raised;
the file holds the exception type and message). Run from anywhere:
  python3 tools/chat_goldens/make_goldens.py
Needs only jinja2 (>= 3.1); transformers is not required.
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "chat")


class GenerationTag(Extension):
    """HF's AssistantTracker: {% generation %}...{% endgeneration %} renders its body as-is."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime(*now).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def snippets(gdir):
    """tests/data/chat/snippets.json: [{"t": template, "ctx": {variables}}] -> goldens/snippets.json
    with "out" (rendered) or "err" (what jinja2 raised) added to each."""
    with open(os.path.join(DATA, "snippets.json"), encoding="utf-8") as fh:
        items = json.load(fh)
    res = []
    for it in items:
        env = make_env([2025, 3, 14, 9, 26, 53])
        ctx = dict(it.get("ctx", {}))
        ctx.setdefault("messages", [])
        ctx.setdefault("tools", None)
        ctx.setdefault("documents", None)
        ctx.setdefault("add_generation_prompt", False)
        r = {"t": it["t"], "ctx": it.get("ctx", {})}
        if "divergence" in it:  # a documented difference: nook must fail cleanly instead
            r["divergence"] = it["divergence"]
        try:
            r["out"] = env.from_string(it["t"]).render(**ctx)
        except Exception as e:
            r["err"] = f"{type(e).__name__}: {e}"
        res.append(r)
    with open(os.path.join(gdir, "snippets.json"), "w", encoding="utf-8", newline="") as fh:
        json.dump(res, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    return len(res)


def main():
    tdir = os.path.join(DATA, "templates")
    cdir = os.path.join(DATA, "conversations")
    gdir = os.path.join(DATA, "goldens")
    os.makedirs(gdir, exist_ok=True)
    for f in os.listdir(gdir):
        if f.endswith(".txt") or f.endswith(".err"):
            os.remove(os.path.join(gdir, f))
    templates = sorted(f[:-6] for f in os.listdir(tdir) if f.endswith(".jinja"))
    convs = sorted(f[:-5] for f in os.listdir(cdir) if f.endswith(".json"))
    n_ok = n_err = 0
    for t in templates:
        with open(os.path.join(tdir, t + ".jinja"), encoding="utf-8", newline="") as fh:
            src = fh.read()
        meta_path = os.path.join(tdir, t + ".json")
        meta = {}
        if os.path.exists(meta_path):
            with open(meta_path, encoding="utf-8") as fh:
                meta = json.load(fh)
        for c in convs:
            with open(os.path.join(cdir, c + ".json"), encoding="utf-8") as fh:
                conv = json.load(fh)
            env = make_env(conv.get("now", [2025, 3, 14, 9, 26, 53]))
            kwargs = dict(meta)
            kwargs.update(conv.get("kwargs", {}))
            base = os.path.join(gdir, f"{t}__{c}")
            try:
                out = env.from_string(src).render(messages=conv["messages"], tools=conv.get("tools"),
                                                  documents=None,
                                                  add_generation_prompt=conv.get("add_generation_prompt", False),
                                                  **kwargs)
                with open(base + ".txt", "w", encoding="utf-8", newline="") as fh:
                    fh.write(out)
                n_ok += 1
            except Exception as e:  # jinja2 raised: the C renderer must fail too
                with open(base + ".err", "w", encoding="utf-8", newline="") as fh:
                    fh.write(f"{type(e).__name__}: {e}\n")
                n_err += 1
    n_snip = snippets(gdir)
    print(f"{n_snip} snippets; "
          f"{len(templates)} templates x {len(convs)} conversations: {n_ok} rendered, {n_err} errors "
          f"(jinja2 {jinja2.__version__}, python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
