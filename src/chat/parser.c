/*
 * parser.c: tokens -> AST, following jinja2's grammar and operator precedence:
 *
 *   expr    := or ("if" or ("else" expr)?)*          (conditional expression)
 *   or      := and ("or" and)*       and := not ("and" not)*       not := "not" not | compare
 *   compare := math1 (("=="|"!="|"<"|"<="|">"|">="|"in"|"not in") math1)*
 *   math1   := concat (("+"|"-") concat)*             concat := math2 ("~" math2)*
 *   math2   := pow (("*"|"/"|"//"|"%") pow)*          pow := unary ("**" unary)*
 *   unary   := ("-"|"+") unary_nofilter | primary postfix* ; then ("|" filter | "is" test | call)*
 *
 * Statements: if/elif/else, for (targets, `if` filter, else), set (name, tuple, ns.attr, block),
 * macro, call, filter, with, break/continue, generation (HF's extension, rendered as-is).
 * Anything else is valid Jinja outside the subset: NOOK_EUNSUPPORTED naming it.
 */
#include "chat/jinja.h"

#include <string.h>

typedef struct parser {
    nk_jctx *c;
    const nk_jtok *t;
    size_t n, i;
    int depth;
} parser;

static const nk_jtok *cur(parser *P) { return &P->t[P->i]; }
static const nk_jtok *peek(parser *P, size_t k) { return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1]; }
static void next(parser *P) { if (P->i + 1 < P->n) P->i++; }

static bool is_name(const nk_jtok *t, const char *s) {
    return t->type == JT_NAME && t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}
static bool is_op(const nk_jtok *t, const char *s) {
    return t->type == JT_OP && t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

static int perr(parser *P, nook_status code, const char *fmt, const char *arg) {
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    return nk_jfail(P->c, code, 0, "%s at line %d", msg, cur(P)->line), -1;
}

static const char *tok_text(parser *P, const nk_jtok *t) {
    char *s = nk_jalloc(P->c, t->len + 1);
    if (!s) return NULL;
    memcpy(s, t->s, t->len);
    s[t->len] = 0;
    return s;
}

static const char *describe(const nk_jtok *t, char buf[48]) {
    switch (t->type) {
    case JT_EOF: return "end of template";
    case JT_DATA: return "template data";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_END: return "'%}'";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_STRING: return "string";
    case JT_INT: case JT_FLOAT: return "number";
    default:
        snprintf(buf, 48, "'%.*s'", (int)NK_MIN(t->len, 40), t->s);
        return buf;
    }
}

static int expect_op(parser *P, const char *op) {
    if (!is_op(cur(P), op)) {
        char b[48], msg[96];
        snprintf(msg, sizeof msg, "expected '%s', got %%s", op);
        return perr(P, NOOK_EFORMAT, msg, describe(cur(P), b));
    }
    next(P);
    return 0;
}

static int expect(parser *P, int type, const char *what) {
    if (cur(P)->type != type) {
        char b[48], msg[96];
        snprintf(msg, sizeof msg, "expected %s, got %%s", what);
        return perr(P, NOOK_EFORMAT, msg, describe(cur(P), b));
    }
    next(P);
    return 0;
}

static nk_jnode *node(parser *P, int kind) {
    nk_jnode *n = nk_jalloc(P->c, sizeof *n);
    if (n) { n->kind = (uint8_t)kind; n->line = cur(P)->line; }
    return n;
}

/* growable node arrays built on the arena */
typedef struct nvec { nk_jnode **v; size_t n, cap; } nvec;
static int nvec_push(parser *P, nvec *a, nk_jnode *x) {
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 4;
        nk_jnode **nv = nk_jalloc(P->c, nc * sizeof(*nv));
        if (!nv) return -1;
        if (a->n) memcpy(nv, a->v, a->n * sizeof(*nv));
        a->v = nv; a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}
typedef struct svec { const char **v; size_t n, cap; } svec;
static int svec_push(parser *P, svec *a, const char *x) {
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 4;
        const char **nv = nk_jalloc(P->c, nc * sizeof(*nv));
        if (!nv) return -1;
        if (a->n) memcpy(nv, a->v, a->n * sizeof(*nv));
        a->v = nv; a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

static nk_jnode *parse_expr(parser *P, bool with_cond);
static nk_jnode *parse_unary(parser *P, bool with_filter);
static nk_jnode *parse_or(parser *P);

static int enter(parser *P) {
    if (++P->depth > P->c->lim.max_depth / 2)
        return perr(P, NOOK_ERANGE, "template nested too deeply%s", "");
    return 0;
}

/* Call arguments after '(': positional, name=value. */
static int parse_args(parser *P, nvec *args, svec *kwn, nvec *kwv) {
    if (expect_op(P, "(")) return -1;
    while (!is_op(cur(P), ")")) {
        if (args->n + kwv->n > 0 && expect_op(P, ",")) return -1;
        if (is_op(cur(P), ")")) break;   /* trailing comma */
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            return perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s' (argument unpacking)", "*args");
        if (cur(P)->type == JT_NAME && is_op(peek(P, 1), "=")) {
            const char *k = tok_text(P, cur(P));
            if (!k) return -1;
            next(P); next(P);
            nk_jnode *v = parse_expr(P, true);
            if (!v || svec_push(P, kwn, k) || nvec_push(P, kwv, v)) return -1;
        } else {
            if (kwv->n) return perr(P, NOOK_EFORMAT, "positional argument follows keyword argument%s", "");
            nk_jnode *v = parse_expr(P, true);
            if (!v || nvec_push(P, args, v)) return -1;
        }
    }
    next(P);
    return 0;
}

static void set_args(nk_jnode *n, nvec *args, svec *kwn, nvec *kwv) {
    n->kids = args->v; n->n = args->n;
    n->names = kwn->v; n->n_names = kwn->n;
    n->kids2 = kwv->v; n->n2 = kwv->n;
}

/* Tuple or single expression; explicit: inside parentheses (so "()" is an empty tuple). */
static nk_jnode *parse_tuple(parser *P, bool with_cond, bool explicit_parens) {
    int line = cur(P)->line;
    nvec items = {0};
    bool comma = false;
    for (;;) {
        if (items.n && expect_op(P, ",")) return NULL;
        const nk_jtok *t = cur(P);
        if (t->type == JT_VAR_END || t->type == JT_BLOCK_END || is_op(t, ")") || is_name(t, "recursive")) break;
        nk_jnode *e = with_cond ? parse_expr(P, true) : parse_or(P);
        if (!e || nvec_push(P, &items, e)) return NULL;
        if (!is_op(cur(P), ",")) break;
        comma = true;
    }
    if (!comma && items.n == 1) return items.v[0];
    if (!comma && items.n == 0 && !explicit_parens) {
        char b[48];
        perr(P, NOOK_EFORMAT, "expected an expression, got %s", describe(cur(P), b));
        return NULL;
    }
    nk_jnode *n = node(P, JN_TUPLE);
    if (!n) return NULL;
    n->line = line;
    n->kids = items.v; n->n = items.n;
    return n;
}

static nk_jnode *parse_primary(parser *P) {
    const nk_jtok *t = cur(P);
    nk_jnode *n;
    char b[48];
    switch (t->type) {
    case JT_NAME: {
        n = node(P, JN_LIT);
        if (!n) return NULL;
        if (is_name(t, "true") || is_name(t, "True")) n->lit = jv_bool(true);
        else if (is_name(t, "false") || is_name(t, "False")) n->lit = jv_bool(false);
        else if (is_name(t, "none") || is_name(t, "None")) n->lit = jv_none();
        else {
            n->kind = JN_NAME;
            if (!(n->name = tok_text(P, t))) return NULL;
        }
        next(P);
        return n;
    }
    case JT_STRING: {
        /* adjacent literals concatenate */
        nk_jbuf buf = {0};
        while (cur(P)->type == JT_STRING) {
            if (nk_jbuf_put(P->c, &buf, cur(P)->s, cur(P)->len)) return NULL;
            next(P);
        }
        nk_jstr *s = nk_jbuf_str(P->c, &buf);
        if (!s || !(n = node(P, JN_LIT))) return NULL;
        n->line = t->line;
        n->lit = jv_str(s);
        return n;
    }
    case JT_INT: case JT_FLOAT:
        if (!(n = node(P, JN_LIT))) return NULL;
        n->lit = t->type == JT_INT ? jv_int(t->i) : jv_float(t->f);
        next(P);
        return n;
    case JT_OP:
        if (is_op(t, "(")) {
            next(P);
            n = parse_tuple(P, true, true);
            if (!n || expect_op(P, ")")) return NULL;
            return n;
        }
        if (is_op(t, "[")) {
            next(P);
            nvec items = {0};
            while (!is_op(cur(P), "]")) {
                if (items.n && expect_op(P, ",")) return NULL;
                if (is_op(cur(P), "]")) break;
                nk_jnode *e = parse_expr(P, true);
                if (!e || nvec_push(P, &items, e)) return NULL;
            }
            next(P);
            if (!(n = node(P, JN_LIST))) return NULL;
            n->line = t->line;
            n->kids = items.v; n->n = items.n;
            return n;
        }
        if (is_op(t, "{")) {
            next(P);
            nvec keys = {0}, vals = {0};
            while (!is_op(cur(P), "}")) {
                if (keys.n && expect_op(P, ",")) return NULL;
                if (is_op(cur(P), "}")) break;
                nk_jnode *k = parse_expr(P, true);
                if (!k || expect_op(P, ":")) return NULL;
                nk_jnode *v = parse_expr(P, true);
                if (!v || nvec_push(P, &keys, k) || nvec_push(P, &vals, v)) return NULL;
            }
            next(P);
            if (!(n = node(P, JN_DICT))) return NULL;
            n->line = t->line;
            n->kids = keys.v; n->n = keys.n;
            n->kids2 = vals.v; n->n2 = vals.n;
            return n;
        }
        break;
    default: break;
    }
    perr(P, NOOK_EFORMAT, "unexpected %s", describe(t, b));
    return NULL;
}

static nk_jnode *parse_subscript(parser *P, nk_jnode *obj) {
    const nk_jtok *t = cur(P);
    if (is_op(t, ".")) {
        next(P);
        const nk_jtok *a = cur(P);
        nk_jnode *n;
        if (a->type == JT_NAME) {
            if (!(n = node(P, JN_ATTR)) || !(n->name = tok_text(P, a))) return NULL;
            n->a = obj;
            next(P);
            return n;
        }
        if (a->type == JT_INT) {
            nk_jnode *k = node(P, JN_LIT);
            if (!k || !(n = node(P, JN_ITEM))) return NULL;
            k->lit = jv_int(a->i);
            n->a = obj; n->b = k;
            next(P);
            return n;
        }
        char b[48];
        perr(P, NOOK_EFORMAT, "expected a name after '.', got %s", describe(a, b));
        return NULL;
    }
    /* '[' */
    next(P);
    nk_jnode *parts[3] = {0};
    bool slice = false;
    int k = 0;
    for (;;) {
        if (is_op(cur(P), ":")) {
            slice = true;
            if (++k > 2) { perr(P, NOOK_EFORMAT, "bad slice%s", ""); return NULL; }
            next(P);
            continue;
        }
        if (is_op(cur(P), "]")) break;
        if (parts[k]) { perr(P, NOOK_EFORMAT, "expected ']'%s", ""); return NULL; }
        if (!(parts[k] = parse_expr(P, true))) return NULL;
        if (is_op(cur(P), ",")) {
            perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s'", "tuple subscript");
            return NULL;
        }
    }
    next(P);
    nk_jnode *n = node(P, slice ? JN_SLICE : JN_ITEM);
    if (!n) return NULL;
    n->line = t->line;
    n->a = obj;
    if (slice) {
        n->kids = nk_jalloc(P->c, 3 * sizeof(nk_jnode *));
        if (!n->kids) return NULL;
        memcpy(n->kids, parts, sizeof parts);
        n->n = 3;
    } else {
        if (!parts[0]) { perr(P, NOOK_EFORMAT, "empty subscript%s", ""); return NULL; }
        n->b = parts[0];
    }
    return n;
}

static nk_jnode *parse_call(parser *P, nk_jnode *callee) {
    nk_jnode *n = node(P, JN_CALL);
    if (!n) return NULL;
    nvec args = {0}, kwv = {0};
    svec kwn = {0};
    if (parse_args(P, &args, &kwn, &kwv)) return NULL;
    n->a = callee;
    set_args(n, &args, &kwn, &kwv);
    return n;
}

static nk_jnode *parse_postfix(parser *P, nk_jnode *n) {
    while (n) {
        if (is_op(cur(P), ".") || is_op(cur(P), "[")) n = parse_subscript(P, n);
        else if (is_op(cur(P), "(")) n = parse_call(P, n);
        else break;
    }
    return n;
}

/* A dotted name for a filter or test (jinja2 allows "a.b"). */
static const char *parse_dotted(parser *P) {
    if (cur(P)->type != JT_NAME) {
        char b[48];
        perr(P, NOOK_EFORMAT, "expected a filter or test name, got %s", describe(cur(P), b));
        return NULL;
    }
    nk_jbuf buf = {0};
    if (nk_jbuf_put(P->c, &buf, cur(P)->s, cur(P)->len)) return NULL;
    next(P);
    while (is_op(cur(P), ".") && peek(P, 1)->type == JT_NAME) {
        next(P);
        if (nk_jbuf_put(P->c, &buf, ".", 1) || nk_jbuf_put(P->c, &buf, cur(P)->s, cur(P)->len)) return NULL;
        next(P);
    }
    nk_jstr *s = nk_jbuf_str(P->c, &buf);
    return s ? s->s : NULL;
}

static nk_jnode *parse_filter(parser *P, nk_jnode *operand) {
    next(P);   /* '|' */
    int line = cur(P)->line;
    const char *name = parse_dotted(P);
    if (!name) return NULL;
    if (!nk_jfilter_known(name)) {
        P->i--;
        perr(P, NOOK_EUNSUPPORTED, "unsupported construct 'filter %s'", name);
        return NULL;
    }
    nk_jnode *n = node(P, JN_FILTER);
    if (!n) return NULL;
    n->line = line;
    n->name = name;
    n->a = operand;
    if (is_op(cur(P), "(")) {
        nvec args = {0}, kwv = {0};
        svec kwn = {0};
        if (parse_args(P, &args, &kwn, &kwv)) return NULL;
        set_args(n, &args, &kwn, &kwv);
    }
    return n;
}

static nk_jnode *parse_test(parser *P, nk_jnode *operand) {
    next(P);   /* 'is' */
    int line = cur(P)->line;
    bool negate = false;
    if (is_name(cur(P), "not")) { negate = true; next(P); }
    const char *name = parse_dotted(P);
    if (!name) return NULL;
    if (!nk_jtest_known(name)) {
        P->i--;
        perr(P, NOOK_EUNSUPPORTED, "unsupported construct 'test %s'", name);
        return NULL;
    }
    nk_jnode *n = node(P, JN_TEST);
    if (!n) return NULL;
    n->line = line;
    n->name = name;
    n->negate = negate;
    n->a = operand;
    const nk_jtok *t = cur(P);
    if (is_op(t, "(")) {
        nvec args = {0}, kwv = {0};
        svec kwn = {0};
        if (parse_args(P, &args, &kwn, &kwv)) return NULL;
        if (kwv.n) { perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s'", "keyword argument to a test"); return NULL; }
        set_args(n, &args, &kwn, &kwv);
    } else if ((t->type == JT_NAME || t->type == JT_STRING || t->type == JT_INT || t->type == JT_FLOAT ||
                is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is")) { perr(P, NOOK_EFORMAT, "cannot chain multiple tests with is%s", ""); return NULL; }
        nk_jnode *arg = parse_postfix(P, parse_primary(P));
        if (!arg) return NULL;
        n->kids = nk_jalloc(P->c, sizeof(nk_jnode *));
        if (!n->kids) return NULL;
        n->kids[0] = arg;
        n->n = 1;
    }
    return n;
}

static nk_jnode *parse_filter_expr(parser *P, nk_jnode *n) {
    while (n) {
        if (is_op(cur(P), "|")) n = parse_filter(P, n);
        else if (is_name(cur(P), "is")) n = parse_test(P, n);
        else if (is_op(cur(P), "(")) n = parse_call(P, n);
        else break;
    }
    return n;
}

static nk_jnode *parse_unary(parser *P, bool with_filter) {
    if (enter(P)) return NULL;
    nk_jnode *n;
    if (is_op(cur(P), "-") || is_op(cur(P), "+")) {
        bool neg = is_op(cur(P), "-");
        n = node(P, neg ? JN_NEG : JN_POS);
        if (!n) return NULL;
        next(P);
        if (!(n->a = parse_unary(P, false))) return NULL;
    } else {
        n = parse_postfix(P, parse_primary(P));
    }
    if (n && with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static nk_jnode *binop(parser *P, int op, nk_jnode *a, nk_jnode *b, int line) {
    if (!a || !b) return NULL;
    nk_jnode *n = node(P, JN_BINOP);
    if (!n) return NULL;
    n->line = line;
    n->ops = nk_jalloc(P->c, sizeof(int));
    if (!n->ops) return NULL;
    n->ops[0] = op;
    n->a = a; n->b = b;
    return n;
}

static nk_jnode *parse_pow(parser *P) {
    nk_jnode *n = parse_unary(P, true);
    while (n && is_op(cur(P), "**")) {
        int line = cur(P)->line;
        next(P);
        n = binop(P, JOP_POW, n, parse_unary(P, true), line);
    }
    return n;
}

static nk_jnode *parse_math2(parser *P) {
    nk_jnode *n = parse_pow(P);
    for (;;) {
        int op;
        if (is_op(cur(P), "*")) op = JOP_MUL;
        else if (is_op(cur(P), "/")) op = JOP_DIV;
        else if (is_op(cur(P), "//")) op = JOP_FLOORDIV;
        else if (is_op(cur(P), "%")) op = JOP_MOD;
        else break;
        if (!n) return NULL;
        int line = cur(P)->line;
        next(P);
        n = binop(P, op, n, parse_pow(P), line);
    }
    return n;
}

static nk_jnode *parse_concat(parser *P) {
    nk_jnode *n = parse_math2(P);
    if (!n || !is_op(cur(P), "~")) return n;
    nvec parts = {0};
    if (nvec_push(P, &parts, n)) return NULL;
    int line = cur(P)->line;
    while (is_op(cur(P), "~")) {
        next(P);
        nk_jnode *x = parse_math2(P);
        if (!x || nvec_push(P, &parts, x)) return NULL;
    }
    nk_jnode *c = node(P, JN_CONCAT);
    if (!c) return NULL;
    c->line = line;
    c->kids = parts.v; c->n = parts.n;
    return c;
}

static nk_jnode *parse_math1(parser *P) {
    nk_jnode *n = parse_concat(P);
    while (n && (is_op(cur(P), "+") || is_op(cur(P), "-"))) {
        int op = is_op(cur(P), "+") ? JOP_ADD : JOP_SUB;
        int line = cur(P)->line;
        next(P);
        n = binop(P, op, n, parse_concat(P), line);
    }
    return n;
}

static nk_jnode *parse_compare(parser *P) {
    nk_jnode *first = parse_math1(P);
    if (!first) return NULL;
    nvec operands = {0};
    int ops[64]; size_t nops = 0;
    int line = cur(P)->line;
    for (;;) {
        const nk_jtok *t = cur(P);
        int op = -1;
        if (is_op(t, "==")) op = JOP_EQ;
        else if (is_op(t, "!=")) op = JOP_NE;
        else if (is_op(t, "<")) op = JOP_LT;
        else if (is_op(t, "<=")) op = JOP_LE;
        else if (is_op(t, ">")) op = JOP_GT;
        else if (is_op(t, ">=")) op = JOP_GE;
        else if (is_name(t, "in")) op = JOP_IN;
        else if (is_name(t, "not") && is_name(peek(P, 1), "in")) { op = JOP_NOTIN; next(P); }
        if (op < 0) break;
        next(P);
        if (nops == NK_ARRAY_LEN(ops)) { perr(P, NOOK_ERANGE, "comparison chain too long%s", ""); return NULL; }
        nk_jnode *x = parse_math1(P);
        if (!x || nvec_push(P, &operands, x)) return NULL;
        ops[nops++] = op;
    }
    if (!nops) return first;
    nk_jnode *n = node(P, JN_COMPARE);
    if (!n) return NULL;
    n->line = line;
    n->a = first;
    n->kids = operands.v; n->n = operands.n;
    n->ops = nk_jalloc(P->c, nops * sizeof(int));
    if (!n->ops) return NULL;
    memcpy(n->ops, ops, nops * sizeof(int));
    return n;
}

static nk_jnode *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        if (enter(P)) return NULL;
        nk_jnode *n = node(P, JN_NOT);
        if (!n) return NULL;
        next(P);
        if (!(n->a = parse_not(P))) return NULL;
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

static nk_jnode *parse_and(parser *P) {
    nk_jnode *n = parse_not(P);
    while (n && is_name(cur(P), "and")) {
        nk_jnode *x = node(P, JN_AND);
        if (!x) return NULL;
        next(P);
        x->a = n;
        if (!(x->b = parse_not(P))) return NULL;
        n = x;
    }
    return n;
}

static nk_jnode *parse_or(parser *P) {
    nk_jnode *n = parse_and(P);
    while (n && is_name(cur(P), "or")) {
        nk_jnode *x = node(P, JN_OR);
        if (!x) return NULL;
        next(P);
        x->a = n;
        if (!(x->b = parse_and(P))) return NULL;
        n = x;
    }
    return n;
}

static nk_jnode *parse_expr(parser *P, bool with_cond) {
    if (enter(P)) return NULL;
    nk_jnode *n = parse_or(P);
    while (with_cond && n && is_name(cur(P), "if")) {
        nk_jnode *c = node(P, JN_COND);
        if (!c) return NULL;
        next(P);
        c->a = n;
        if (!(c->b = parse_or(P))) return NULL;
        if (is_name(cur(P), "else")) {
            next(P);
            if (!(c->c = parse_expr(P, true))) return NULL;
        }
        n = c;
    }
    P->depth--;
    return n;
}

/* ---- statements ---------------------------------------------------------------------------- */
static int parse_body(parser *P, const char *const *ends, size_t n_ends, nvec *out);

static int block_end(parser *P) { return expect(P, JT_BLOCK_END, "'%}'"); }

/* Body up to one of ends; leaves the cursor on the end tag's name (after "{%"). */
static int body_until(parser *P, const char *const *ends, size_t n_ends, nk_jnode ***v, size_t *n) {
    nvec b = {0};
    if (parse_body(P, ends, n_ends, &b)) return -1;
    *v = b.v; *n = b.n;
    return 0;
}

/* Assignment targets: name | name, name | (name, name) */
static int parse_targets(parser *P, svec *names) {
    bool paren = is_op(cur(P), "(");
    if (paren) next(P);
    for (;;) {
        if (cur(P)->type != JT_NAME) {
            char b[48];
            return perr(P, NOOK_EFORMAT, "expected a name to assign to, got %s", describe(cur(P), b));
        }
        const char *s = tok_text(P, cur(P));
        if (!s || svec_push(P, names, s)) return -1;
        next(P);
        if (!is_op(cur(P), ",")) break;
        next(P);
        if (paren && is_op(cur(P), ")")) break;
    }
    if (paren && expect_op(P, ")")) return -1;
    return 0;
}

/* Macro / call-block parameter list: (a, b=default, ...) */
static int parse_params(parser *P, nk_jmacro *m) {
    svec names = {0};
    nvec defs = {0};
    if (expect_op(P, "(")) return -1;
    while (!is_op(cur(P), ")")) {
        if (names.n && expect_op(P, ",")) return -1;
        if (is_op(cur(P), ")")) break;
        if (cur(P)->type != JT_NAME) {
            char b[48];
            return perr(P, NOOK_EFORMAT, "expected a parameter name, got %s", describe(cur(P), b));
        }
        const char *s = tok_text(P, cur(P));
        if (!s || svec_push(P, &names, s)) return -1;
        next(P);
        nk_jnode *d = NULL;
        if (is_op(cur(P), "=")) {
            next(P);
            if (!(d = parse_expr(P, true))) return -1;
        } else if (defs.n && defs.v[defs.n - 1]) {
            return perr(P, NOOK_EFORMAT, "non-default argument follows default argument%s", "");
        }
        if (nvec_push(P, &defs, d)) return -1;
    }
    next(P);
    m->params = names.v;
    m->defaults = defs.v;
    m->n_params = names.n;
    return 0;
}

static nk_jnode *parse_if(parser *P) {
    nk_jnode *n = node(P, JN_IF);
    if (!n) return NULL;
    next(P);   /* if / elif */
    if (!(n->a = parse_tuple(P, false, false)) || block_end(P)) return NULL;
    static const char *const ends[] = { "elif", "else", "endif" };
    if (body_until(P, ends, 3, &n->kids, &n->n)) return NULL;
    if (is_name(cur(P), "elif")) {
        nk_jnode *e = parse_if(P);   /* consumes through endif */
        if (!e) return NULL;
        n->kids2 = nk_jalloc(P->c, sizeof(nk_jnode *));
        if (!n->kids2) return NULL;
        n->kids2[0] = e;
        n->n2 = 1;
        return n;
    }
    if (is_name(cur(P), "else")) {
        next(P);
        if (block_end(P)) return NULL;
        static const char *const e2[] = { "endif" };
        if (body_until(P, e2, 1, &n->kids2, &n->n2)) return NULL;
    }
    next(P);   /* endif */
    if (block_end(P)) return NULL;
    return n;
}

static nk_jnode *parse_for(parser *P) {
    nk_jnode *n = node(P, JN_FOR);
    if (!n) return NULL;
    next(P);
    svec names = {0};
    if (parse_targets(P, &names)) return NULL;
    n->names = names.v; n->n_names = names.n;
    if (!is_name(cur(P), "in")) { perr(P, NOOK_EFORMAT, "expected 'in' in for loop%s", ""); return NULL; }
    next(P);
    if (!(n->a = parse_tuple(P, false, false))) return NULL;
    if (is_name(cur(P), "if")) {
        next(P);
        if (!(n->b = parse_expr(P, true))) return NULL;
    }
    if (is_name(cur(P), "recursive")) {
        perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s'", "for ... recursive");
        return NULL;
    }
    if (block_end(P)) return NULL;
    static const char *const ends[] = { "else", "endfor" };
    if (body_until(P, ends, 2, &n->kids, &n->n)) return NULL;
    if (is_name(cur(P), "else")) {
        next(P);
        if (block_end(P)) return NULL;
        static const char *const e2[] = { "endfor" };
        if (body_until(P, e2, 1, &n->kids2, &n->n2)) return NULL;
    }
    next(P);
    if (block_end(P)) return NULL;
    return n;
}

static nk_jnode *parse_set(parser *P) {
    int line = cur(P)->line;
    next(P);
    nk_jnode *n;
    if (cur(P)->type == JT_NAME && is_op(peek(P, 1), ".") && peek(P, 2)->type == JT_NAME) {
        /* ns.attr = value */
        if (!(n = node(P, JN_SET_ATTR))) return NULL;
        n->names = nk_jalloc(P->c, sizeof(char *));
        if (!n->names || !(n->names[0] = tok_text(P, cur(P)))) return NULL;
        n->n_names = 1;
        next(P); next(P);
        if (!(n->name = tok_text(P, cur(P)))) return NULL;
        next(P);
        if (expect_op(P, "=") || !(n->a = parse_tuple(P, true, false)) || block_end(P)) return NULL;
        n->line = line;
        return n;
    }
    svec names = {0};
    if (parse_targets(P, &names)) return NULL;
    if (is_op(cur(P), "=")) {
        if (!(n = node(P, JN_SET))) return NULL;
        next(P);
        if (!(n->a = parse_tuple(P, true, false)) || block_end(P)) return NULL;
    } else {
        /* {% set x %}...{% endset %} (optionally with a filter: {% set x | upper %}) */
        if (!(n = node(P, JN_SET_BLOCK))) return NULL;
        if (names.n != 1) { perr(P, NOOK_EFORMAT, "block set needs a single name%s", ""); return NULL; }
        if (is_op(cur(P), "|")) {
            perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s'", "filtered block set");
            return NULL;
        }
        if (block_end(P)) return NULL;
        static const char *const ends[] = { "endset" };
        if (body_until(P, ends, 1, &n->kids, &n->n)) return NULL;
        next(P);
        if (block_end(P)) return NULL;
    }
    n->line = line;
    n->names = names.v; n->n_names = names.n;
    return n;
}

static nk_jnode *parse_macro(parser *P) {
    nk_jnode *n = node(P, JN_MACRO);
    if (!n) return NULL;
    next(P);
    if (cur(P)->type != JT_NAME) { perr(P, NOOK_EFORMAT, "expected a macro name%s", ""); return NULL; }
    nk_jmacro *m = nk_jalloc(P->c, sizeof *m);
    if (!m || !(m->name = tok_text(P, cur(P)))) return NULL;
    next(P);
    if (parse_params(P, m) || block_end(P)) return NULL;
    static const char *const ends[] = { "endmacro" };
    if (body_until(P, ends, 1, &m->body, &m->n_body)) return NULL;
    next(P);
    if (cur(P)->type == JT_NAME) next(P);   /* {% endmacro name %} */
    if (block_end(P)) return NULL;
    n->name = m->name;
    n->macro = m;
    return n;
}

static nk_jnode *parse_call_block(parser *P) {
    nk_jnode *n = node(P, JN_CALL_BLOCK);
    if (!n) return NULL;
    next(P);
    nk_jmacro *m = nk_jalloc(P->c, sizeof *m);
    if (!m) return NULL;
    if (is_op(cur(P), "(") && parse_params(P, m)) return NULL;
    if (!(n->a = parse_expr(P, true))) return NULL;
    if (n->a->kind != JN_CALL) { perr(P, NOOK_EFORMAT, "expected a call in the call block%s", ""); return NULL; }
    if (block_end(P)) return NULL;
    static const char *const ends[] = { "endcall" };
    if (body_until(P, ends, 1, &m->body, &m->n_body)) return NULL;
    next(P);
    if (block_end(P)) return NULL;
    n->macro = m;
    return n;
}

static nk_jnode *parse_filter_block(parser *P) {
    nk_jnode *n = node(P, JN_FILTER_BLOCK);
    if (!n) return NULL;
    next(P);
    /* the filter chain applies to a placeholder operand (a = NULL at the bottom) */
    nk_jnode *chain = NULL;
    do {
        if (chain && !is_op(cur(P), "|")) break;
        if (chain) next(P);
        const char *name = parse_dotted(P);
        if (!name) return NULL;
        if (!nk_jfilter_known(name)) { perr(P, NOOK_EUNSUPPORTED, "unsupported construct 'filter %s'", name); return NULL; }
        nk_jnode *f = node(P, JN_FILTER);
        if (!f) return NULL;
        f->name = name;
        f->a = chain;
        if (is_op(cur(P), "(")) {
            nvec args = {0}, kwv = {0};
            svec kwn = {0};
            if (parse_args(P, &args, &kwn, &kwv)) return NULL;
            set_args(f, &args, &kwn, &kwv);
        }
        chain = f;
    } while (is_op(cur(P), "|"));
    if (block_end(P)) return NULL;
    n->a = chain;
    static const char *const ends[] = { "endfilter" };
    if (body_until(P, ends, 1, &n->kids, &n->n)) return NULL;
    next(P);
    if (block_end(P)) return NULL;
    return n;
}

static nk_jnode *parse_with(parser *P) {
    nk_jnode *n = node(P, JN_WITH);
    if (!n) return NULL;
    next(P);
    svec names = {0};
    nvec vals = {0};
    while (cur(P)->type != JT_BLOCK_END) {
        if (names.n && expect_op(P, ",")) return NULL;
        if (cur(P)->type != JT_NAME) { perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s'", "with target"); return NULL; }
        const char *s = tok_text(P, cur(P));
        if (!s || svec_push(P, &names, s)) return NULL;
        next(P);
        if (expect_op(P, "=")) return NULL;
        nk_jnode *v = parse_expr(P, true);
        if (!v || nvec_push(P, &vals, v)) return NULL;
    }
    next(P);
    n->names = names.v; n->n_names = names.n;
    n->kids2 = vals.v; n->n2 = vals.n;
    static const char *const ends[] = { "endwith" };
    if (body_until(P, ends, 1, &n->kids, &n->n)) return NULL;
    next(P);
    if (block_end(P)) return NULL;
    return n;
}

/* {% generation %}...{% endgeneration %}: HF's AssistantTracker marks assistant text; the
 * rendered string is the body unchanged. Parsed as a `with` that binds nothing. */
static nk_jnode *parse_generation(parser *P) {
    nk_jnode *n = node(P, JN_WITH);
    if (!n) return NULL;
    next(P);
    if (block_end(P)) return NULL;
    static const char *const ends[] = { "endgeneration" };
    if (body_until(P, ends, 1, &n->kids, &n->n)) return NULL;
    next(P);
    if (block_end(P)) return NULL;
    return n;
}

static nk_jnode *parse_statement(parser *P) {
    const nk_jtok *t = cur(P);
    if (t->type != JT_NAME) {
        char b[48];
        perr(P, NOOK_EFORMAT, "expected a statement name after '{%%', got %s", describe(t, b));
        return NULL;
    }
    if (is_name(t, "if")) return parse_if(P);
    if (is_name(t, "for")) return parse_for(P);
    if (is_name(t, "set")) return parse_set(P);
    if (is_name(t, "macro")) return parse_macro(P);
    if (is_name(t, "call")) return parse_call_block(P);
    if (is_name(t, "filter")) return parse_filter_block(P);
    if (is_name(t, "with")) return parse_with(P);
    if (is_name(t, "generation")) return parse_generation(P);
    if (is_name(t, "break") || is_name(t, "continue")) {
        nk_jnode *n = node(P, is_name(t, "break") ? JN_BREAK : JN_CONTINUE);
        if (!n) return NULL;
        next(P);
        if (block_end(P)) return NULL;
        return n;
    }
    static const char *const known_elsewhere[] = {
        "elif", "else", "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "endwith",
        "endgeneration", "endraw",
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(known_elsewhere); i++)
        if (is_name(t, known_elsewhere[i])) {
            const char *s = tok_text(P, t);
            perr(P, NOOK_EFORMAT, "unexpected '%s'", s ? s : "?");
            return NULL;
        }
    const char *s = tok_text(P, t);
    perr(P, NOOK_EUNSUPPORTED, "unsupported construct '%s'", s ? s : "?");
    return NULL;
}

static int parse_body(parser *P, const char *const *ends, size_t n_ends, nvec *out) {
    if (enter(P)) return -1;
    for (;;) {
        const nk_jtok *t = cur(P);
        if (t->type == JT_EOF) {
            if (n_ends) return perr(P, NOOK_EFORMAT, "unexpected end of template, expected '%s'", ends[n_ends - 1]);
            break;
        }
        nk_jnode *n = NULL;
        if (t->type == JT_DATA) {
            if (!(n = node(P, JN_TEXT))) return -1;
            nk_jstr *s = nk_jstr_new(P->c, t->s, t->len);
            if (!s) return -1;
            n->lit = jv_str(s);
            next(P);
        } else if (t->type == JT_VAR_BEGIN) {
            next(P);
            if (!(n = node(P, JN_OUTPUT))) return -1;
            n->line = t->line;
            if (!(n->a = parse_tuple(P, true, false))) return -1;
            if (expect(P, JT_VAR_END, "'}}'")) return -1;
        } else if (t->type == JT_BLOCK_BEGIN) {
            next(P);
            for (size_t i = 0; i < n_ends; i++)
                if (is_name(cur(P), ends[i])) { P->depth--; return 0; }
            if (!(n = parse_statement(P))) return -1;
        } else {
            char b[48];
            return perr(P, NOOK_EFORMAT, "unexpected %s", describe(t, b));
        }
        if (nvec_push(P, out, n)) return -1;
    }
    P->depth--;
    return 0;
}

int nk_jparse(nk_jctx *c, const nk_jtok *toks, size_t n, nk_jnode ***body, size_t *n_body) {
    parser P = { .c = c, .t = toks, .n = n };
    nvec b = {0};
    if (parse_body(&P, NULL, 0, &b)) return -1;
    *body = b.v;
    *n_body = b.n;
    return 0;
}
