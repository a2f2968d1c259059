/*
 * eval.c: walks the AST. Expressions evaluate to values (Python semantics from value.c),
 * statements append to ctx->out.
 *
 * Scoping follows jinja2: a for-loop iteration, a macro call and a `with` block open a
 * scope whose parent is the enclosing one; `if` does not. `set` writes to the innermost
 * scope, so a variable set inside a loop body is gone at the next iteration and after the
 * loop (which is why templates use namespace() to carry state out of loops).
 *
 * Every evaluated node counts one step and one level of depth against the limits, so
 * neither a long loop nor deep recursion can run away.
 */
#include "chat/jinja.h"

#include <math.h>
#include <string.h>

int nk_jstep(nk_jctx *c, int line) {
    if (++c->steps > c->lim.max_steps)
        return nk_jfail(c, NOOK_ERANGE, line, "template step limit (%llu) exceeded",
                        (unsigned long long)c->lim.max_steps), -1;
    return 0;
}

static nk_jscope *scope_new(nk_jctx *c, nk_jscope *parent) {
    nk_jscope *s = nk_jalloc(c, sizeof *s);
    if (s) s->parent = parent;
    return s;
}

int nk_jscope_set(nk_jctx *c, nk_jscope *s, const char *name, nk_jv v) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) { s->vals[i] = v; return 0; }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4;
        const char **nn = nk_jalloc(c, nc * sizeof(*nn));
        nk_jv *nv = nk_jalloc(c, nc * sizeof(nk_jv));
        if (!nn || !nv) return -1;
        if (s->n) { memcpy(nn, s->names, s->n * sizeof(*nn)); memcpy(nv, s->vals, s->n * sizeof(nk_jv)); }
        s->names = nn; s->vals = nv; s->cap = nc;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
    return 0;
}

const nk_jv *nk_jscope_get(const nk_jscope *s, const char *name) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (strcmp(s->names[i], name) == 0) return &s->vals[i];
    return NULL;
}

static int undefined_err(nk_jctx *c, nk_jv v, int line) {
    if (v.u.undef_name) return nk_jfail(c, NOOK_EINVAL, line, "'%s' is undefined", v.u.undef_name), -1;
    return nk_jfail(c, NOOK_EINVAL, line, "value is undefined"), -1;
}

/* ---- attribute and item access ----------------------------------------------------------- */
int nk_jgetattr(nk_jctx *c, nk_jv obj, const char *name, size_t nlen, int line, nk_jv *out) {
    switch (obj.t) {
    case JV_UNDEF: return undefined_err(c, obj, line);
    case JV_DICT: case JV_NS: {
        const nk_jv *v = nk_jdict_get(obj.u.d, name, nlen);
        *out = v ? *v : jv_undef(name);
        return 0;
    }
    case JV_LOOP: {
        const nk_jloop *l = obj.u.loop;
        int64_t i = l->index0, n = l->length;
        if (!strcmp(name, "index")) *out = jv_int(i + 1);
        else if (!strcmp(name, "index0")) *out = jv_int(i);
        else if (!strcmp(name, "revindex")) *out = jv_int(n - i);
        else if (!strcmp(name, "revindex0")) *out = jv_int(n - i - 1);
        else if (!strcmp(name, "first")) *out = jv_bool(i == 0);
        else if (!strcmp(name, "last")) *out = jv_bool(i == n - 1);
        else if (!strcmp(name, "length")) *out = jv_int(n);
        else if (!strcmp(name, "depth")) *out = jv_int(l->depth0 + 1);
        else if (!strcmp(name, "depth0")) *out = jv_int(l->depth0);
        else if (!strcmp(name, "previtem")) *out = i > 0 ? l->items[i - 1] : jv_undef("previtem");
        else if (!strcmp(name, "nextitem")) *out = i + 1 < n ? l->items[i + 1] : jv_undef("nextitem");
        else *out = jv_undef(name);
        return 0;
    }
    default:
        *out = jv_undef(name);
        return 0;
    }
}

/* Python index -> offset in [0, n), or -1 when out of range. */
static int64_t norm_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i < 0 || (uint64_t)i >= n ? -1 : i;
}

int nk_jgetitem(nk_jctx *c, nk_jv obj, nk_jv key, int line, nk_jv *out) {
    if (obj.t == JV_UNDEF) return undefined_err(c, obj, line);
    if (key.t == JV_STR) {
        if (obj.t == JV_DICT || obj.t == JV_NS) {
            const nk_jv *v = nk_jdict_get(obj.u.d, key.u.s->s, key.u.s->len);
            *out = v ? *v : jv_undef(key.u.s->s);
            return 0;
        }
        return nk_jgetattr(c, obj, key.u.s->s, key.u.s->len, line, out);
    }
    if (key.t == JV_INT || key.t == JV_BOOL) {
        int64_t i = key.t == JV_INT ? key.u.i : key.u.b;
        if (jv_is_seq(obj)) {
            int64_t k = norm_index(i, obj.u.l->n);
            *out = k < 0 ? jv_undef(NULL) : obj.u.l->v[k];
            return 0;
        }
        if (obj.t == JV_STR) {
            size_t n = nk_ju_count(obj.u.s->s, obj.u.s->len);
            int64_t k = norm_index(i, n);
            if (k < 0) { *out = jv_undef(NULL); return 0; }
            size_t pos = 0; uint32_t cp;
            for (int64_t q = 0; q < k; q++) pos += nk_ju_decode(obj.u.s->s, obj.u.s->len, pos, &cp);
            size_t len = nk_ju_decode(obj.u.s->s, obj.u.s->len, pos, &cp);
            nk_jstr *s = nk_jstr_new(c, obj.u.s->s + pos, len);
            if (!s) return -1;
            *out = jv_str(s);
            return 0;
        }
    }
    *out = jv_undef(NULL);
    return 0;
}

/* Python slice semantics (start/stop/step may be None) over n elements: fills idx. */
static int slice_indices(nk_jctx *c, const nk_jv *parts, size_t n, int line, int64_t *start, int64_t *stop, int64_t *step) {
    int64_t st = 1;
    for (int k = 0; k < 3; k++)
        if (parts[k].t != JV_NONE && parts[k].t != JV_INT && parts[k].t != JV_BOOL)
            return nk_jfail(c, NOOK_EINVAL, line, "slice indices must be integers or None"), -1;
    if (parts[2].t != JV_NONE) st = parts[2].t == JV_INT ? parts[2].u.i : parts[2].u.b;
    if (st == 0) return nk_jfail(c, NOOK_EINVAL, line, "slice step cannot be zero"), -1;
    int64_t len = (int64_t)n, lo, hi;
    int64_t def_lo = st > 0 ? 0 : len - 1, def_hi = st > 0 ? len : -1;
    if (parts[0].t == JV_NONE) lo = def_lo;
    else {
        lo = parts[0].t == JV_INT ? parts[0].u.i : parts[0].u.b;
        if (lo < 0) { lo += len; if (lo < 0) lo = st > 0 ? 0 : -1; }
        else if (lo >= len) lo = st > 0 ? len : len - 1;
    }
    if (parts[1].t == JV_NONE) hi = def_hi;
    else {
        hi = parts[1].t == JV_INT ? parts[1].u.i : parts[1].u.b;
        if (hi < 0) { hi += len; if (hi < 0) hi = st > 0 ? 0 : -1; }
        else if (hi >= len) hi = st > 0 ? len : len - 1;
    }
    *start = lo; *stop = hi; *step = st;
    return 0;
}

static int do_slice(nk_jctx *c, nk_jv obj, const nk_jv *parts, int line, nk_jv *out) {
    if (obj.t == JV_UNDEF) return undefined_err(c, obj, line);
    int64_t lo, hi, st;
    if (jv_is_seq(obj)) {
        if (slice_indices(c, parts, obj.u.l->n, line, &lo, &hi, &st)) return -1;
        nk_jlist *l = nk_jlist_new(c, 0);
        if (!l) return -1;
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st)
            if (nk_jlist_push(c, l, obj.u.l->v[i])) return -1;
        *out = (nk_jv){ .t = obj.t, .u.l = l };
        return 0;
    }
    if (obj.t == JV_STR) {
        const char *s = obj.u.s->s;
        size_t len = obj.u.s->len, n = nk_ju_count(s, len);
        /* code point offsets */
        size_t *off = nk_jalloc(c, (n + 1) * sizeof(size_t));
        if (!off) return -1;
        size_t pos = 0;
        for (size_t i = 0; i < n; i++) { off[i] = pos; uint32_t cp; pos += nk_ju_decode(s, len, pos, &cp); }
        off[n] = len;
        if (slice_indices(c, parts, n, line, &lo, &hi, &st)) return -1;
        nk_jbuf b = {0};
        if (st == 1) {
            if (hi > lo && nk_jbuf_put(c, &b, s + off[lo], off[hi] - off[lo])) return -1;
        } else {
            for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st)
                if (nk_jbuf_put(c, &b, s + off[i], off[i + 1] - off[i])) return -1;
        }
        nk_jstr *r = nk_jbuf_str(c, &b);
        if (!r) return -1;
        *out = jv_str(r);
        return 0;
    }
    *out = jv_undef(NULL);
    return 0;
}

/* Materialize what `for x in v` iterates over. */
int nk_jiter(nk_jctx *c, nk_jv v, int line, nk_jlist **out) {
    switch (v.t) {
    case JV_UNDEF: return (*out = nk_jlist_new(c, 0)) ? 0 : -1;
    case JV_LIST: case JV_TUPLE: *out = v.u.l; return 0;
    case JV_DICT: {
        nk_jlist *l = nk_jlist_new(c, v.u.d->n);
        if (!l) return -1;
        for (size_t i = 0; i < v.u.d->n; i++) l->v[i] = jv_str(v.u.d->k[i]);
        l->n = v.u.d->n;
        *out = l;
        return 0;
    }
    case JV_STR: {
        nk_jlist *l = nk_jlist_new(c, 0);
        if (!l) return -1;
        const char *s = v.u.s->s;
        size_t len = v.u.s->len;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            size_t k = nk_ju_decode(s, len, i, &cp);
            nk_jstr *ch = nk_jstr_new(c, s + i, k);
            if (!ch || nk_jlist_push(c, l, jv_str(ch))) return -1;
            i += k;
        }
        *out = l;
        return 0;
    }
    default:
        return nk_jfail(c, NOOK_EINVAL, line, "'%s' object is not iterable", nk_jv_type_name(v)), -1;
    }
}

/* ---- operators ------------------------------------------------------------------------------- */
static bool as_int(nk_jv v, int64_t *i) {
    if (v.t == JV_INT) { *i = v.u.i; return true; }
    if (v.t == JV_BOOL) { *i = v.u.b; return true; }
    return false;
}
static double as_f(nk_jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }

static int type_err(nk_jctx *c, const char *op, nk_jv a, nk_jv b, int line) {
    if (a.t == JV_UNDEF) return undefined_err(c, a, line);
    if (b.t == JV_UNDEF) return undefined_err(c, b, line);
    return nk_jfail(c, NOOK_EINVAL, line, "unsupported operand type(s) for %s: '%s' and '%s'",
                    op, nk_jv_type_name(a), nk_jv_type_name(b)), -1;
}

static int repeat(nk_jctx *c, nk_jv seq, int64_t times, int line, nk_jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        uint64_t total;
        if (!nk_mul_ok(seq.u.s->len, (uint64_t)times, &total) || total > c->lim.max_output)
            return nk_jfail(c, NOOK_ERANGE, line, "string repetition too large"), -1;
        nk_jbuf b = {0};
        for (int64_t i = 0; i < times; i++) if (nk_jbuf_put(c, &b, seq.u.s->s, seq.u.s->len)) return -1;
        nk_jstr *s = nk_jbuf_str(c, &b);
        if (!s) return -1;
        *out = jv_str(s);
        return 0;
    }
    uint64_t total;
    if (!nk_mul_ok(seq.u.l->n, (uint64_t)times, &total) || total > (1u << 24))
        return nk_jfail(c, NOOK_ERANGE, line, "list repetition too large"), -1;
    nk_jlist *l = nk_jlist_new(c, (size_t)total);
    if (!l) return -1;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < seq.u.l->n; k++) l->v[l->n++] = seq.u.l->v[k];
    *out = (nk_jv){ .t = seq.t, .u.l = l };
    return 0;
}

static int binop(nk_jctx *c, int op, nk_jv a, nk_jv b, int line, nk_jv *out) {
    int64_t x = 0, y = 0, r;
    bool ints = as_int(a, &x) && as_int(b, &y);
    bool nums = jv_is_num(a) && jv_is_num(b);
    switch (op) {
    case JOP_ADD:
        if (ints) {
            if (__builtin_add_overflow(x, y, &r)) return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
            *out = jv_int(r); return 0;
        }
        if (nums) { *out = jv_float(as_f(a) + as_f(b)); return 0; }
        if (a.t == JV_STR && b.t == JV_STR) {
            nk_jstr *s = nk_jstr_cat(c, a.u.s->s, a.u.s->len, b.u.s->s, b.u.s->len);
            if (!s) return -1;
            *out = jv_str(s); return 0;
        }
        if (jv_is_seq(a) && a.t == b.t) {
            nk_jlist *l = nk_jlist_new(c, a.u.l->n + b.u.l->n);
            if (!l) return -1;
            for (size_t i = 0; i < a.u.l->n; i++) l->v[l->n++] = a.u.l->v[i];
            for (size_t i = 0; i < b.u.l->n; i++) l->v[l->n++] = b.u.l->v[i];
            *out = (nk_jv){ .t = a.t, .u.l = l };
            return 0;
        }
        return type_err(c, "+", a, b, line);
    case JOP_SUB:
        if (ints) {
            if (__builtin_sub_overflow(x, y, &r)) return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
            *out = jv_int(r); return 0;
        }
        if (nums) { *out = jv_float(as_f(a) - as_f(b)); return 0; }
        return type_err(c, "-", a, b, line);
    case JOP_MUL:
        if (ints) {
            if (__builtin_mul_overflow(x, y, &r)) return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
            *out = jv_int(r); return 0;
        }
        if (nums) { *out = jv_float(as_f(a) * as_f(b)); return 0; }
        if ((a.t == JV_STR || jv_is_seq(a)) && as_int(b, &y)) return repeat(c, a, y, line, out);
        if ((b.t == JV_STR || jv_is_seq(b)) && as_int(a, &x)) return repeat(c, b, x, line, out);
        return type_err(c, "*", a, b, line);
    case JOP_DIV:
        if (!nums) return type_err(c, "/", a, b, line);
        if (as_f(b) == 0.0) return nk_jfail(c, NOOK_EINVAL, line, "division by zero"), -1;
        *out = jv_float(as_f(a) / as_f(b));
        return 0;
    case JOP_FLOORDIV: case JOP_MOD:
        if (!nums) {
            if (op == JOP_MOD && a.t == JV_STR)
                return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct '%%' (printf-style string formatting)"), -1;
            return type_err(c, op == JOP_MOD ? "%" : "//", a, b, line);
        }
        if (ints) {
            if (y == 0) return nk_jfail(c, NOOK_EINVAL, line, "integer division or modulo by zero"), -1;
            if (x == INT64_MIN && y == -1) return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) { q--; m += y; }
            *out = jv_int(op == JOP_MOD ? m : q);
            return 0;
        } else {
            double fx = as_f(a), fy = as_f(b);
            if (fy == 0.0) return nk_jfail(c, NOOK_EINVAL, line, "float division or modulo by zero"), -1;
            double m = fmod(fx, fy);
            if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
            *out = jv_float(op == JOP_MOD ? m : floor(fx / fy));
            return 0;
        }
    case JOP_POW:
        if (!nums) return type_err(c, "**", a, b, line);
        if (ints && y >= 0) {
            int64_t acc = 1, base = x;
            for (int64_t e = y; e > 0; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(acc, base, &acc))
                    return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
                if (e > 1 && __builtin_mul_overflow(base, base, &base))
                    return nk_jfail(c, NOOK_ERANGE, line, "integer overflow"), -1;
            }
            *out = jv_int(acc);
            return 0;
        }
        *out = jv_float(pow(as_f(a), as_f(b)));
        return 0;
    }
    return nk_jfail(c, NOOK_EINTERNAL, line, "bad operator %d", op), -1;
}

static int contains(nk_jctx *c, nk_jv needle, nk_jv hay, int line, bool *out) {
    switch (hay.t) {
    case JV_STR:
        if (needle.t != JV_STR)
            return nk_jfail(c, NOOK_EINVAL, line, "'in <string>' requires string as left operand, not %s",
                            nk_jv_type_name(needle)), -1;
        *out = needle.u.s->len == 0 || memmem(hay.u.s->s, hay.u.s->len, needle.u.s->s, needle.u.s->len) != NULL;
        return 0;
    case JV_LIST: case JV_TUPLE:
        *out = false;
        for (size_t i = 0; i < hay.u.l->n; i++) if (nk_jv_eq(needle, hay.u.l->v[i])) { *out = true; break; }
        return 0;
    case JV_DICT:
        *out = needle.t == JV_STR && nk_jdict_get(hay.u.d, needle.u.s->s, needle.u.s->len) != NULL;
        return 0;
    case JV_UNDEF: *out = false; return 0;
    default:
        return nk_jfail(c, NOOK_EINVAL, line, "argument of type '%s' is not iterable", nk_jv_type_name(hay)), -1;
    }
}

static int compare(nk_jctx *c, int op, nk_jv a, nk_jv b, int line, bool *out) {
    int r;
    switch (op) {
    case JOP_EQ: *out = nk_jv_eq(a, b); return 0;
    case JOP_NE: *out = !nk_jv_eq(a, b); return 0;
    case JOP_IN: return contains(c, a, b, line, out);
    case JOP_NOTIN: if (contains(c, a, b, line, out)) return -1; *out = !*out; return 0;
    default:
        if (a.t == JV_UNDEF) return undefined_err(c, a, line);
        if (b.t == JV_UNDEF) return undefined_err(c, b, line);
        if (nk_jv_cmp(c, a, b, line, &r)) return -1;
        if ((a.t == JV_FLOAT && isnan(a.u.f)) || (b.t == JV_FLOAT && isnan(b.u.f))) { *out = false; return 0; }
        *out = op == JOP_LT ? r < 0 : op == JOP_LE ? r <= 0 : op == JOP_GT ? r > 0 : r >= 0;
        return 0;
    }
}

/* ---- calls --------------------------------------------------------------------------------- */
static int eval_args(nk_jctx *c, nk_jscope *s, const nk_jnode *e, nk_jv **args, nk_jv **kwv) {
    *args = NULL; *kwv = NULL;
    if (e->n && !(*args = nk_jalloc(c, e->n * sizeof(nk_jv)))) return -1;
    if (e->n2 && !(*kwv = nk_jalloc(c, e->n2 * sizeof(nk_jv)))) return -1;
    for (size_t i = 0; i < e->n; i++) if (nk_jeval(c, s, e->kids[i], &(*args)[i])) return -1;
    for (size_t i = 0; i < e->n2; i++) if (nk_jeval(c, s, e->kids2[i], &(*kwv)[i])) return -1;
    return 0;
}

/* Render `body` into a fresh buffer and return it as a string value. */
static int capture(nk_jctx *c, nk_jscope *s, nk_jnode *const *body, size_t n, nk_jv *out) {
    nk_jbuf saved = c->out;
    c->out = (nk_jbuf){0};
    int rc = nk_jexec_body(c, s, body, n);
    nk_jbuf got = c->out;
    c->out = saved;
    if (rc < 0) return -1;
    nk_jstr *str = nk_jbuf_str(c, &got);
    if (!str) return -1;
    *out = jv_str(str);
    return 0;
}

static int call_macro(nk_jctx *c, const nk_jmacro *m, const nk_jv *args, size_t n, const char **kwn,
                      const nk_jv *kwv, size_t nkw, int line, nk_jv *out) {
    if (c->macro_depth >= c->lim.max_macro_depth)
        return nk_jfail(c, NOOK_ERANGE, line, "macro recursion deeper than %d", c->lim.max_macro_depth), -1;
    nk_jscope *s = scope_new(c, m->scope);
    if (!s) return -1;
    nk_jlist *varargs = nk_jlist_new(c, 0);
    nk_jdict *kwargs = nk_jdict_new(c, 0);
    if (!varargs || !kwargs) return -1;
    bool *bound = m->n_params ? nk_jalloc(c, m->n_params) : NULL;
    if (m->n_params && !bound) return -1;
    for (size_t i = 0; i < n; i++) {
        if (i < m->n_params) { if (nk_jscope_set(c, s, m->params[i], args[i])) return -1; bound[i] = true; }
        else if (nk_jlist_push(c, varargs, args[i])) return -1;
    }
    for (size_t k = 0; k < nkw; k++) {
        size_t i = 0;
        for (; i < m->n_params; i++) if (!strcmp(m->params[i], kwn[k])) break;
        if (i < m->n_params) {
            if (bound[i]) return nk_jfail(c, NOOK_EINVAL, line, "macro '%s' got multiple values for argument '%s'",
                                          m->name ? m->name : "caller", kwn[k]), -1;
            if (nk_jscope_set(c, s, m->params[i], kwv[k])) return -1;
            bound[i] = true;
        } else if (!strcmp(kwn[k], "caller")) {
            if (nk_jscope_set(c, s, "caller", kwv[k])) return -1;
        } else {
            nk_jstr *ks = nk_jstr_new(c, kwn[k], strlen(kwn[k]));
            if (!ks || nk_jdict_set(c, kwargs, ks, kwv[k])) return -1;
        }
    }
    c->macro_depth++;
    for (size_t i = 0; i < m->n_params; i++) {
        if (bound[i]) continue;
        nk_jv v = jv_undef(m->params[i]);
        if (m->defaults[i] && nk_jeval(c, s, m->defaults[i], &v)) { c->macro_depth--; return -1; }
        if (nk_jscope_set(c, s, m->params[i], v)) { c->macro_depth--; return -1; }
    }
    if (nk_jscope_set(c, s, "varargs", (nk_jv){ .t = JV_TUPLE, .u.l = varargs }) ||
        nk_jscope_set(c, s, "kwargs", (nk_jv){ .t = JV_DICT, .u.d = kwargs })) { c->macro_depth--; return -1; }
    if (m->caller && nk_jscope_set(c, s, "caller", (nk_jv){ .t = JV_MACRO, .u.m = m->caller })) {
        c->macro_depth--; return -1;
    }
    int rc = capture(c, s, m->body, m->n_body, out);
    c->macro_depth--;
    return rc;
}

int nk_jcall(nk_jctx *c, nk_jv callee, const nk_jv *args, size_t n, const char **kwn,
             const nk_jv *kwv, size_t nkw, int line, nk_jv *out) {
    switch (callee.t) {
    case JV_MACRO: return call_macro(c, callee.u.m, args, n, kwn, kwv, nkw, line, out);
    case JV_FUNC: return nk_jcall_builtin(c, callee.u.fn, args, n, kwn, kwv, nkw, line, out);
    case JV_UNDEF: return undefined_err(c, callee, line);
    default:
        return nk_jfail(c, NOOK_EINVAL, line, "'%s' object is not callable", nk_jv_type_name(callee)), -1;
    }
}

static int eval_call(nk_jctx *c, nk_jscope *s, const nk_jnode *e, nk_jv *out) {
    nk_jv *args, *kwv;
    if (e->a->kind == JN_ATTR) {
        nk_jv obj;
        if (nk_jeval(c, s, e->a->a, &obj)) return -1;
        if (obj.t == JV_UNDEF) return undefined_err(c, obj, e->line);
        if (eval_args(c, s, e, &args, &kwv)) return -1;
        bool handled = false;
        if (nk_jmethod(c, obj, e->a->name, args, e->n, e->names, kwv, e->n2, e->line, out, &handled)) return -1;
        if (handled) return 0;
        nk_jv fn;
        if (nk_jgetattr(c, obj, e->a->name, strlen(e->a->name), e->line, &fn)) return -1;
        if (fn.t == JV_UNDEF && obj.t != JV_DICT && obj.t != JV_NS)
            return nk_jfail(c, NOOK_EUNSUPPORTED, e->line, "unsupported construct 'method %s.%s'",
                            nk_jv_type_name(obj), e->a->name), -1;
        return nk_jcall(c, fn, args, e->n, e->names, kwv, e->n2, e->line, out);
    }
    nk_jv fn;
    if (nk_jeval(c, s, e->a, &fn)) return -1;
    if (eval_args(c, s, e, &args, &kwv)) return -1;
    return nk_jcall(c, fn, args, e->n, e->names, kwv, e->n2, e->line, out);
}

/* Apply a filter node whose operand is `v` (for filter blocks: the innermost a == NULL). */
static int apply_filter(nk_jctx *c, nk_jscope *s, const nk_jnode *f, nk_jv v, nk_jv *out) {
    if (f->a && apply_filter(c, s, f->a, v, &v)) return -1;
    nk_jv *args, *kwv;
    if (eval_args(c, s, f, &args, &kwv)) return -1;
    return nk_jfilter(c, f->name, v, args, f->n, f->names, kwv, f->n2, f->line, out);
}

/* ---- expressions ------------------------------------------------------------------------------ */
static int eval_inner(nk_jctx *c, nk_jscope *s, const nk_jnode *e, nk_jv *out) {
    nk_jv a, b;
    switch (e->kind) {
    case JN_LIT: *out = e->lit; return 0;
    case JN_NAME: {
        const nk_jv *v = nk_jscope_get(s, e->name);
        if (v) { *out = *v; return 0; }
        int fn = nk_jglobal_fn(e->name);
        if (fn >= 0) { *out = (nk_jv){ .t = JV_FUNC, .u.fn = fn }; return 0; }
        *out = jv_undef(e->name);
        return 0;
    }
    case JN_ATTR:
        if (nk_jeval(c, s, e->a, &a)) return -1;
        return nk_jgetattr(c, a, e->name, strlen(e->name), e->line, out);
    case JN_ITEM:
        if (nk_jeval(c, s, e->a, &a) || nk_jeval(c, s, e->b, &b)) return -1;
        return nk_jgetitem(c, a, b, e->line, out);
    case JN_SLICE: {
        nk_jv parts[3];
        if (nk_jeval(c, s, e->a, &a)) return -1;
        for (int k = 0; k < 3; k++) {
            parts[k] = jv_none();
            if (e->kids[k] && nk_jeval(c, s, e->kids[k], &parts[k])) return -1;
        }
        return do_slice(c, a, parts, e->line, out);
    }
    case JN_CALL: return eval_call(c, s, e, out);
    case JN_FILTER: {
        if (nk_jeval(c, s, e->a, &a)) return -1;
        nk_jv *args, *kwv;
        if (eval_args(c, s, e, &args, &kwv)) return -1;
        return nk_jfilter(c, e->name, a, args, e->n, e->names, kwv, e->n2, e->line, out);
    }
    case JN_TEST: {
        if (nk_jeval(c, s, e->a, &a)) return -1;
        nk_jv *args, *kwv;
        if (eval_args(c, s, e, &args, &kwv)) return -1;
        bool r;
        if (nk_jtest(c, e->name, a, args, e->n, e->line, &r)) return -1;
        *out = jv_bool(e->negate ? !r : r);
        return 0;
    }
    case JN_BINOP:
        if (nk_jeval(c, s, e->a, &a) || nk_jeval(c, s, e->b, &b)) return -1;
        return binop(c, e->ops[0], a, b, e->line, out);
    case JN_NEG: case JN_POS:
        if (nk_jeval(c, s, e->a, &a)) return -1;
        if (a.t == JV_UNDEF) return undefined_err(c, a, e->line);
        if (!jv_is_num(a))
            return nk_jfail(c, NOOK_EINVAL, e->line, "bad operand type for unary %c: '%s'",
                            e->kind == JN_NEG ? '-' : '+', nk_jv_type_name(a)), -1;
        if (e->kind == JN_POS) { *out = a.t == JV_BOOL ? jv_int(a.u.b) : a; return 0; }
        if (a.t == JV_FLOAT) *out = jv_float(-a.u.f);
        else {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b;
            if (x == INT64_MIN) return nk_jfail(c, NOOK_ERANGE, e->line, "integer overflow"), -1;
            *out = jv_int(-x);
        }
        return 0;
    case JN_NOT:
        if (nk_jeval(c, s, e->a, &a)) return -1;
        *out = jv_bool(!nk_jv_truthy(a));
        return 0;
    case JN_AND:
        if (nk_jeval(c, s, e->a, &a)) return -1;
        if (!nk_jv_truthy(a)) { *out = a; return 0; }
        return nk_jeval(c, s, e->b, out);
    case JN_OR:
        if (nk_jeval(c, s, e->a, &a)) return -1;
        if (nk_jv_truthy(a)) { *out = a; return 0; }
        return nk_jeval(c, s, e->b, out);
    case JN_COMPARE: {
        if (nk_jeval(c, s, e->a, &a)) return -1;
        for (size_t i = 0; i < e->n; i++) {
            bool r;
            if (nk_jeval(c, s, e->kids[i], &b) || compare(c, e->ops[i], a, b, e->line, &r)) return -1;
            if (!r) { *out = jv_bool(false); return 0; }
            a = b;
        }
        *out = jv_bool(true);
        return 0;
    }
    case JN_COND:
        if (nk_jeval(c, s, e->b, &a)) return -1;
        if (nk_jv_truthy(a)) return nk_jeval(c, s, e->a, out);
        if (e->c) return nk_jeval(c, s, e->c, out);
        *out = jv_undef(NULL);
        return 0;
    case JN_LIST: case JN_TUPLE: {
        nk_jlist *l = nk_jlist_new(c, e->n);
        if (!l) return -1;
        for (size_t i = 0; i < e->n; i++) if (nk_jeval(c, s, e->kids[i], &l->v[i])) return -1;
        l->n = e->n;
        *out = (nk_jv){ .t = e->kind == JN_LIST ? JV_LIST : JV_TUPLE, .u.l = l };
        return 0;
    }
    case JN_DICT: {
        nk_jdict *d = nk_jdict_new(c, e->n);
        if (!d) return -1;
        for (size_t i = 0; i < e->n; i++) {
            if (nk_jeval(c, s, e->kids[i], &a) || nk_jeval(c, s, e->kids2[i], &b)) return -1;
            if (a.t != JV_STR)
                return nk_jfail(c, NOOK_EUNSUPPORTED, e->line, "unsupported construct 'dict key of type %s'",
                                nk_jv_type_name(a)), -1;
            if (nk_jdict_set(c, d, a.u.s, b)) return -1;
        }
        *out = (nk_jv){ .t = JV_DICT, .u.d = d };
        return 0;
    }
    case JN_CONCAT: {
        nk_jbuf buf = {0};
        for (size_t i = 0; i < e->n; i++) {
            if (nk_jeval(c, s, e->kids[i], &a) || nk_jv_str(c, &buf, a)) return -1;
        }
        nk_jstr *r = nk_jbuf_str(c, &buf);
        if (!r) return -1;
        *out = jv_str(r);
        return 0;
    }
    default:
        return nk_jfail(c, NOOK_EINTERNAL, e->line, "bad expression node %d", e->kind), -1;
    }
}

int nk_jeval(nk_jctx *c, nk_jscope *s, const nk_jnode *e, nk_jv *out) {
    if (nk_jstep(c, e->line)) return -1;
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        return nk_jfail(c, NOOK_ERANGE, e->line, "template evaluation nested deeper than %d", c->lim.max_depth), -1;
    }
    int rc = eval_inner(c, s, e, out);
    c->depth--;
    return rc;
}

/* ---- statements -------------------------------------------------------------------------------- */
static int emit(nk_jctx *c, const char *s, size_t n, int line) {
    if (c->out.len + n > c->lim.max_output)
        return nk_jfail(c, NOOK_ERANGE, line, "rendered text exceeds %zu bytes", c->lim.max_output), -1;
    return nk_jbuf_put(c, &c->out, s, n);
}

static int assign(nk_jctx *c, nk_jscope *s, const char **names, size_t n, nk_jv v, int line) {
    if (n == 1) return nk_jscope_set(c, s, names[0], v);
    nk_jlist *items;
    if (v.t == JV_UNDEF) return undefined_err(c, v, line);
    if (nk_jiter(c, v, line, &items)) return -1;
    if (items->n != n)
        return nk_jfail(c, NOOK_EINVAL, line, "cannot unpack %zu values into %zu names", items->n, n), -1;
    for (size_t i = 0; i < n; i++) if (nk_jscope_set(c, s, names[i], items->v[i])) return -1;
    return 0;
}

static int exec_for(nk_jctx *c, nk_jscope *s, const nk_jnode *st) {
    nk_jv it;
    nk_jlist *items;
    if (nk_jeval(c, s, st->a, &it) || nk_jiter(c, it, st->line, &items)) return -1;
    if (st->b) {   /* {% for x in y if cond %}: filter first, loop.* counts the kept items */
        nk_jlist *kept = nk_jlist_new(c, 0);
        if (!kept) return -1;
        for (size_t i = 0; i < items->n; i++) {
            nk_jscope *fs = scope_new(c, s);
            nk_jv cond;
            if (!fs || assign(c, fs, st->names, st->n_names, items->v[i], st->line) ||
                nk_jeval(c, fs, st->b, &cond)) return -1;
            if (nk_jv_truthy(cond) && nk_jlist_push(c, kept, items->v[i])) return -1;
        }
        items = kept;
    }
    if (items->n == 0) {
        nk_jscope *es = scope_new(c, s);
        if (!es) return -1;
        int rc = nk_jexec_body(c, es, st->kids2, st->n2);
        return rc < 0 ? -1 : 0;
    }
    nk_jloop *loop = nk_jalloc(c, sizeof *loop);
    if (!loop) return -1;
    loop->length = (int64_t)items->n;
    loop->items = items->v;
    for (size_t i = 0; i < items->n; i++) {
        if (nk_jstep(c, st->line)) return -1;
        loop->index0 = (int64_t)i;
        nk_jscope *is = scope_new(c, s);
        if (!is || assign(c, is, st->names, st->n_names, items->v[i], st->line) ||
            nk_jscope_set(c, is, "loop", (nk_jv){ .t = JV_LOOP, .u.loop = loop })) return -1;
        int rc = nk_jexec_body(c, is, st->kids, st->n);
        if (rc < 0) return -1;
        if (rc == JX_BREAK) break;
    }
    return 0;
}

static int exec_stmt(nk_jctx *c, nk_jscope *s, const nk_jnode *st) {
    nk_jv v;
    switch (st->kind) {
    case JN_TEXT: return emit(c, st->lit.u.s->s, st->lit.u.s->len, st->line);
    case JN_OUTPUT: {
        if (nk_jeval(c, s, st->a, &v)) return -1;
        if (v.t == JV_STR) return emit(c, v.u.s->s, v.u.s->len, st->line);
        nk_jbuf b = {0};
        if (nk_jv_str(c, &b, v)) return -1;
        return emit(c, b.p ? b.p : "", b.len, st->line);
    }
    case JN_IF:
        if (nk_jeval(c, s, st->a, &v)) return -1;
        return nk_jv_truthy(v) ? nk_jexec_body(c, s, st->kids, st->n) : nk_jexec_body(c, s, st->kids2, st->n2);
    case JN_FOR: return exec_for(c, s, st);
    case JN_SET:
        if (nk_jeval(c, s, st->a, &v)) return -1;
        return assign(c, s, st->names, st->n_names, v, st->line);
    case JN_SET_ATTR: {
        const nk_jv *ns = nk_jscope_get(s, st->names[0]);
        if (!ns || ns->t != JV_NS)
            return nk_jfail(c, NOOK_EINVAL, st->line, "cannot assign attribute on non-namespace object"), -1;
        if (nk_jeval(c, s, st->a, &v)) return -1;
        nk_jstr *k = nk_jstr_new(c, st->name, strlen(st->name));
        return k ? nk_jdict_set(c, ns->u.d, k, v) : -1;
    }
    case JN_SET_BLOCK:
        if (capture(c, s, st->kids, st->n, &v)) return -1;
        return nk_jscope_set(c, s, st->names[0], v);
    case JN_MACRO: {
        nk_jmacro *m = nk_jalloc(c, sizeof *m);
        if (!m) return -1;
        *m = *st->macro;
        m->scope = s;
        return nk_jscope_set(c, s, m->name, (nk_jv){ .t = JV_MACRO, .u.m = m });
    }
    case JN_CALL_BLOCK: {
        nk_jmacro *caller = nk_jalloc(c, sizeof *caller);
        if (!caller) return -1;
        *caller = *st->macro;
        caller->scope = s;
        const nk_jnode *call = st->a;
        nk_jv fn, *args, *kwv;
        if (nk_jeval(c, s, call->a, &fn) || eval_args(c, s, call, &args, &kwv)) return -1;
        /* pass caller= as an extra keyword argument */
        const char **kwn2 = nk_jalloc(c, (call->n2 + 1) * sizeof(char *));
        nk_jv *kwv2 = nk_jalloc(c, (call->n2 + 1) * sizeof(nk_jv));
        if (!kwn2 || !kwv2) return -1;
        for (size_t i = 0; i < call->n2; i++) { kwn2[i] = call->names[i]; kwv2[i] = kwv[i]; }
        kwn2[call->n2] = "caller";
        kwv2[call->n2] = (nk_jv){ .t = JV_MACRO, .u.m = caller };
        if (nk_jcall(c, fn, args, call->n, kwn2, kwv2, call->n2 + 1, st->line, &v)) return -1;
        if (v.t == JV_STR) return emit(c, v.u.s->s, v.u.s->len, st->line);
        nk_jbuf b = {0};
        if (nk_jv_str(c, &b, v)) return -1;
        return emit(c, b.p ? b.p : "", b.len, st->line);
    }
    case JN_FILTER_BLOCK: {
        nk_jv body;
        if (capture(c, s, st->kids, st->n, &body) || apply_filter(c, s, st->a, body, &v)) return -1;
        nk_jbuf b = {0};
        if (nk_jv_str(c, &b, v)) return -1;
        return emit(c, b.p ? b.p : "", b.len, st->line);
    }
    case JN_WITH: {
        nk_jscope *ws = scope_new(c, s);
        if (!ws) return -1;
        for (size_t i = 0; i < st->n_names; i++) {
            if (nk_jeval(c, s, st->kids2[i], &v) || nk_jscope_set(c, ws, st->names[i], v)) return -1;
        }
        return nk_jexec_body(c, ws, st->kids, st->n);
    }
    case JN_BREAK: return JX_BREAK;
    case JN_CONTINUE: return JX_CONTINUE;
    default:
        return nk_jfail(c, NOOK_EINTERNAL, st->line, "bad statement node %d", st->kind), -1;
    }
}

/* Returns 0, -1 (error in ctx), JX_BREAK or JX_CONTINUE (propagated to the enclosing loop). */
int nk_jexec_body(nk_jctx *c, nk_jscope *s, nk_jnode *const *body, size_t n) {
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        return nk_jfail(c, NOOK_ERANGE, n ? body[0]->line : 0, "template nested deeper than %d", c->lim.max_depth), -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (nk_jstep(c, body[i]->line)) { rc = -1; break; }
        rc = exec_stmt(c, s, body[i]);
        if (rc != 0) break;
    }
    c->depth--;
    return rc;
}
