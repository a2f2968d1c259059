/*
 * jinja.h: internals of the chat-template interpreter (a Jinja subset).
 *
 * Pipeline: lexer.c turns template text into tokens (applying Jinja's whitespace rules as
 * Hugging Face configures them: trim_blocks, lstrip_blocks, no trailing newline), parser.c
 * builds an AST, eval.c walks it, value.c holds the Python-like value model (printing,
 * equality, truthiness, JSON), filters.c the filters, tests, methods and global functions.
 *
 * Memory: everything a template or a render allocates comes from an arena (nk_jarena) that
 * is freed in one go; values are plain structs that point into it and are shared freely.
 * Each arena has a byte budget, so a hostile template fails with NOOK_ERANGE instead of
 * eating the machine. Not part of the public API; see chat.h.
 */
#ifndef NK_CHAT_JINJA_H
#define NK_CHAT_JINJA_H

#include "base/base.h"
#include "chat/chat.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena ---------------------------------------------------------------------- */
typedef struct nk_jchunk nk_jchunk;
typedef struct nk_jarena {
    nk_jchunk *head;
    size_t total;   /* bytes handed out so far, chunk overhead included */
    size_t limit;   /* total may not exceed this */
    bool oom;       /* the last NULL from nk_ja_alloc was the allocator's, not the limit's */
} nk_jarena;

void *nk_ja_alloc(nk_jarena *a, size_t n);  /* zeroed, 16-aligned; NULL when over limit or OOM (sets oom) */
void  nk_ja_free(nk_jarena *a);

/* ---- values --------------------------------------------------------------------- */
typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR,
    JV_LIST, JV_TUPLE, JV_DICT, JV_NS, JV_MACRO, JV_FUNC, JV_LOOP,
} nk_jtype;

typedef struct nk_jstr { size_t len; char s[]; } nk_jstr;   /* NUL-terminated, UTF-8 */
typedef struct nk_jlist nk_jlist;
typedef struct nk_jdict nk_jdict;
typedef struct nk_jnode nk_jnode;
typedef struct nk_jloop nk_jloop;
typedef struct nk_jscope nk_jscope;

typedef struct nk_jv {
    uint8_t t;                  /* nk_jtype */
    union {
        bool b;
        int64_t i;
        double f;
        const nk_jstr *s;
        nk_jlist *l;            /* JV_LIST, JV_TUPLE */
        nk_jdict *d;            /* JV_DICT, JV_NS */
        struct nk_jmacro *m;
        int fn;                 /* JV_FUNC: index into the builtin function table */
        nk_jloop *loop;
        const char *undef_name; /* JV_UNDEF: what was missing (for error messages), may be NULL */
    } u;
} nk_jv;

struct nk_jlist { size_t n, cap; nk_jv *v; };
struct nk_jdict { size_t n, cap; const nk_jstr **k; nk_jv *v; };

struct nk_jloop {
    int64_t index0, length, depth0;
    const nk_jv *items;         /* the (filtered) items, for previtem/nextitem */
};

/* A macro (or a {% call %} body): parameters with defaults, body, defining scope. */
typedef struct nk_jmacro {
    const char *name;
    const char **params;
    nk_jnode **defaults;        /* per param, NULL = required */
    size_t n_params;
    nk_jnode **body; size_t n_body;
    nk_jscope *scope;           /* lexical parent */
    struct nk_jmacro *caller;   /* bound `caller` for {% call %} */
} nk_jmacro;

static inline nk_jv jv_undef(const char *name) { nk_jv v = { .t = JV_UNDEF }; v.u.undef_name = name; return v; }
static inline nk_jv jv_none(void) { nk_jv v = { .t = JV_NONE }; return v; }
static inline nk_jv jv_bool(bool b) { nk_jv v = { .t = JV_BOOL }; v.u.b = b; return v; }
static inline nk_jv jv_int(int64_t i) { nk_jv v = { .t = JV_INT }; v.u.i = i; return v; }
static inline nk_jv jv_float(double f) { nk_jv v = { .t = JV_FLOAT }; v.u.f = f; return v; }
static inline nk_jv jv_str(const nk_jstr *s) { nk_jv v = { .t = JV_STR }; v.u.s = s; return v; }
static inline bool jv_is_num(nk_jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static inline bool jv_is_seq(nk_jv v) { return v.t == JV_LIST || v.t == JV_TUPLE; }
static inline bool jv_is_map(nk_jv v) { return v.t == JV_DICT; }

/* ---- render context ------------------------------------------------------------------
 * One per render (or per compile, for the parser's literals). Functions that can fail
 * return -1 after writing the reason into ctx->err (nk_jfail); 0 on success. */
struct nk_jscope {
    nk_jscope *parent;
    size_t n, cap;
    const char **names;
    nk_jv *vals;
};

typedef struct nk_jbuf { char *p; size_t len, cap; } nk_jbuf;   /* arena-backed string builder */

typedef struct nk_jctx {
    nk_jarena arena;
    nook_error *err;
    nk_chat_limits lim;
    nk_jbuf out;                /* the rendered text */
    uint64_t steps;
    int depth;
    int macro_depth;
    nk_chat_time now;
    nk_jscope *globals;
} nk_jctx;

nook_status nk_jfail(nk_jctx *c, nook_status code, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void *nk_jalloc(nk_jctx *c, size_t n);                 /* arena alloc, error set on failure */
nk_jstr *nk_jstr_new(nk_jctx *c, const char *s, size_t len);
nk_jstr *nk_jstr_cat(nk_jctx *c, const char *a, size_t na, const char *b, size_t nb);
nk_jlist *nk_jlist_new(nk_jctx *c, size_t cap);
int nk_jlist_push(nk_jctx *c, nk_jlist *l, nk_jv v);
nk_jdict *nk_jdict_new(nk_jctx *c, size_t cap);
int nk_jdict_set(nk_jctx *c, nk_jdict *d, const nk_jstr *k, nk_jv v);
const nk_jv *nk_jdict_get(const nk_jdict *d, const char *k, size_t klen);

int nk_jbuf_put(nk_jctx *c, nk_jbuf *b, const char *s, size_t n);
static inline int nk_jbuf_puts(nk_jctx *c, nk_jbuf *b, const char *s) { return nk_jbuf_put(c, b, s, __builtin_strlen(s)); }
nk_jstr *nk_jbuf_str(nk_jctx *c, nk_jbuf *b);          /* copy out as a string value */

/* Python semantics. */
bool nk_jv_truthy(nk_jv v);
bool nk_jv_eq(nk_jv a, nk_jv b);
int  nk_jv_cmp(nk_jctx *c, nk_jv a, nk_jv b, int line, int *out);  /* <0,0,>0 as Python's < */
int  nk_jv_str(nk_jctx *c, nk_jbuf *b, nk_jv v);       /* str(v) appended to b */
int  nk_jv_repr(nk_jctx *c, nk_jbuf *b, nk_jv v);      /* repr(v) appended to b */
nk_jstr *nk_jv_to_str(nk_jctx *c, nk_jv v);            /* str(v) as a new string (or v's own) */
const char *nk_jv_type_name(nk_jv v);
void nk_jfmt_float(double f, char out[40]);            /* Python repr(float) */

typedef struct nk_jjson_opts {
    const char *indent; size_t indent_len; bool has_indent;
    const char *item_sep, *key_sep;
    bool sort_keys;
    bool ensure_ascii;
} nk_jjson_opts;
int nk_jv_tojson(nk_jctx *c, nk_jbuf *b, nk_jv v, const nk_jjson_opts *o, int level, int line);

/* jansson -> value (deep copy into the arena). */
int nk_jv_from_json(nk_jctx *c, const json_t *j, nk_jv *out, int depth);

/* UTF-8 helpers on Python code points. */
size_t nk_ju_decode(const char *s, size_t len, size_t i, uint32_t *cp);  /* returns bytes used (>=1) */
size_t nk_ju_encode(uint32_t cp, char out[4]);
size_t nk_ju_count(const char *s, size_t len);                           /* code points */
bool   nk_ju_isspace(uint32_t cp);                                         /* Python str.isspace */

/* ---- lexer ------------------------------------------------------------------------------ */
typedef enum {
    JT_EOF, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP,
} nk_jtok_type;

typedef struct nk_jtok {
    uint8_t type;
    int line;
    const char *s; size_t len;  /* DATA/STRING: decoded text (arena); NAME/OP: source slice */
    int64_t i; double f;
} nk_jtok;

/* Tokenize src into *toks (arena). Errors: NOOK_EFORMAT (unterminated tag/string, bad char). */
int nk_jlex(nk_jctx *c, const char *src, size_t len, nk_jtok **toks, size_t *n);

/* ---- AST ---------------------------------------------------------------------------------- */
typedef enum {
    /* statements */
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_ATTR, JN_SET_BLOCK, JN_MACRO, JN_CALL_BLOCK,
    JN_FILTER_BLOCK, JN_BREAK, JN_CONTINUE, JN_WITH,
    /* expressions */
    JN_LIT, JN_NAME, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST, JN_BINOP, JN_NEG,
    JN_POS, JN_NOT, JN_AND, JN_OR, JN_COMPARE, JN_COND, JN_LIST, JN_TUPLE, JN_DICT, JN_CONCAT,
} nk_jnode_kind;

typedef enum {
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW,
    JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
} nk_jop;

struct nk_jnode {
    uint8_t kind;
    bool negate;                /* JN_TEST: `is not` */
    int line;
    const char *name;           /* NAME/ATTR/FILTER/TEST/SET_ATTR/MACRO: identifier */
    nk_jnode *a, *b, *c;        /* operands / condition / value */
    nk_jnode **kids; size_t n;  /* args, items, body, compare operands */
    nk_jnode **kids2; size_t n2;/* kwargs values, else body, dict values */
    const char **names; size_t n_names; /* targets, kwarg names, macro params */
    int *ops;                   /* JN_COMPARE: one op per operand */
    nk_jv lit;
    struct nk_jmacro *macro;    /* JN_MACRO/JN_CALL_BLOCK: the definition (parse-time) */
};

/* Parse a token stream into a statement list. Errors: NOOK_EFORMAT (syntax),
 * NOOK_EUNSUPPORTED (a construct outside the subset, named), NOOK_ERANGE (nesting). */
int nk_jparse(nk_jctx *c, const nk_jtok *toks, size_t n, nk_jnode ***body, size_t *n_body);

/* ---- evaluation ----------------------------------------------------------------------------- */
int nk_jeval(nk_jctx *c, nk_jscope *s, const nk_jnode *e, nk_jv *out);
int nk_jexec_body(nk_jctx *c, nk_jscope *s, nk_jnode *const *body, size_t n);  /* 0, -1, or JX_* */
enum { JX_BREAK = 1, JX_CONTINUE = 2 };
int nk_jcall(nk_jctx *c, nk_jv callee, const nk_jv *args, size_t n, const char **kwn,
             const nk_jv *kwv, size_t nkw, int line, nk_jv *out);
int nk_jgetattr(nk_jctx *c, nk_jv obj, const char *name, size_t nlen, int line, nk_jv *out);
int nk_jgetitem(nk_jctx *c, nk_jv obj, nk_jv key, int line, nk_jv *out);
int nk_jiter(nk_jctx *c, nk_jv v, int line, nk_jlist **out);   /* materialize iteration */
int nk_jstep(nk_jctx *c, int line);                             /* count one step against the limit */
int nk_jscope_set(nk_jctx *c, nk_jscope *s, const char *name, nk_jv v);
const nk_jv *nk_jscope_get(const nk_jscope *s, const char *name);

/* ---- filters, tests, methods, globals (filters.c) -------------------------------------------- */
bool nk_jfilter_known(const char *name);
bool nk_jtest_known(const char *name);
int nk_jfilter(nk_jctx *c, const char *name, nk_jv v, const nk_jv *args, size_t n,
               const char **kwn, const nk_jv *kwv, size_t nkw, int line, nk_jv *out);
int nk_jtest(nk_jctx *c, const char *name, nk_jv v, const nk_jv *args, size_t n, int line, bool *out);
/* obj.name(args): string, dict, list and loop methods. *handled=false when obj has no such method. */
int nk_jmethod(nk_jctx *c, nk_jv obj, const char *name, const nk_jv *args, size_t n,
               const char **kwn, const nk_jv *kwv, size_t nkw, int line, nk_jv *out, bool *handled);
/* String helpers shared by filters and methods (filters.c). mode: 'u','l','c' (capitalize),
 * 't' (title); which: 1 lstrip, 2 rstrip, 3 strip; chars NULL = whitespace; sep NULL = runs
 * of whitespace; maxsplit/count < 0 = unlimited. */
int nk_jcase_map(nk_jctx *c, const char *s, size_t len, char mode, nk_jv *out);
int nk_jstrip(nk_jctx *c, const char *s, size_t len, const nk_jstr *chars, int which, nk_jv *out);
int nk_jsplit(nk_jctx *c, const char *s, size_t len, const nk_jstr *sep, int64_t maxsplit, bool right,
              int line, nk_jv *out);
int nk_jreplace(nk_jctx *c, const nk_jstr *s, const nk_jstr *old, const nk_jstr *new_, int64_t count, nk_jv *out);
int nk_jdict_items(nk_jctx *c, const nk_jdict *d, nk_jlist **out);   /* list of (key, value) tuples */
int nk_jglobal_fn(const char *name);   /* index of a builtin global function or -1 */
const char *nk_jglobal_fn_name(int fn);
int nk_jcall_builtin(nk_jctx *c, int fn, const nk_jv *args, size_t n, const char **kwn,
                     const nk_jv *kwv, size_t nkw, int line, nk_jv *out);

#endif /* NK_CHAT_JINJA_H */
