/*
 * methods.c: Python methods templates call on values (str.strip, str.split, dict.items,
 * dict.get, loop.cycle, ...) and the global functions: range, namespace, dict, and the two
 * Hugging Face adds, raise_exception(msg) and strftime_now(fmt).
 *
 * strftime_now reads the time from the render options when the caller sets one (so output
 * is reproducible), else the local clock, as HF's datetime.now() does. It formats with a
 * built-in C-locale strftime, so an application's setlocale() cannot change the prompt.
 */
#include "chat/jinja.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct margs { const nk_jv *args; size_t n; const char **kwn; const nk_jv *kwv; size_t nkw; } margs;

static const nk_jv *marg(const margs *a, size_t pos, const char *name) {
    if (pos < a->n) return &a->args[pos];
    for (size_t i = 0; i < a->nkw; i++) if (name && !strcmp(a->kwn[i], name)) return &a->kwv[i];
    return NULL;
}

static int arg_err(nk_jctx *c, const char *m, int line) {
    return nk_jfail(c, NOOK_EINVAL, line, "%s(): bad arguments", m), -1;
}

static bool opt_str(const nk_jv *v, const nk_jstr **out) {
    if (!v || v->t == JV_NONE) { *out = NULL; return true; }
    if (v->t != JV_STR) return false;
    *out = v->u.s;
    return true;
}

/* startswith/endswith with a str or a tuple of str */
static int affix(nk_jctx *c, const nk_jstr *s, const nk_jv *p, bool start, int line, bool *out) {
    if (!p) return arg_err(c, start ? "startswith" : "endswith", line);
    if (p->t == JV_STR) {
        const nk_jstr *x = p->u.s;
        *out = x->len <= s->len && memcmp(start ? s->s : s->s + s->len - x->len, x->s, x->len) == 0;
        return 0;
    }
    if (jv_is_seq(*p)) {
        *out = false;
        for (size_t i = 0; i < p->u.l->n && !*out; i++) {
            if (p->u.l->v[i].t != JV_STR) return arg_err(c, start ? "startswith" : "endswith", line);
            if (affix(c, s, &p->u.l->v[i], start, line, out)) return -1;
        }
        return 0;
    }
    return arg_err(c, start ? "startswith" : "endswith", line);
}

static int str_method(nk_jctx *c, const nk_jstr *s, const char *name, const margs *a, int line, nk_jv *out, bool *handled) {
    *handled = true;
    const nk_jstr *x;
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        if (!opt_str(marg(a, 0, "chars"), &x)) return arg_err(c, name, line);
        return nk_jstrip(c, s->s, s->len, x, name[0] == 'l' ? 1 : name[0] == 'r' ? 2 : 3, out);
    }
    if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
        const nk_jv *ms = marg(a, 1, "maxsplit");
        if (!opt_str(marg(a, 0, "sep"), &x) || (ms && ms->t != JV_INT)) return arg_err(c, name, line);
        return nk_jsplit(c, s->s, s->len, x, ms ? ms->u.i : -1, name[0] == 'r', line, out);
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (a->n > 1) return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'str.%s with start/end'", name), -1;
        bool r;
        if (affix(c, s, marg(a, 0, NULL), name[0] == 's', line, &r)) return -1;
        *out = jv_bool(r);
        return 0;
    }
    if (!strcmp(name, "replace")) {
        const nk_jv *o = marg(a, 0, "old"), *n = marg(a, 1, "new"), *cnt = marg(a, 2, "count");
        if (!o || !n || o->t != JV_STR || n->t != JV_STR || (cnt && cnt->t != JV_INT)) return arg_err(c, name, line);
        return nk_jreplace(c, s, o->u.s, n->u.s, cnt ? cnt->u.i : -1, out);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize"))
        return nk_jcase_map(c, s->s, s->len, name[0] == 'c' ? 'c' : name[0], out);
    if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") || !strcmp(name, "rindex") ||
        !strcmp(name, "count")) {
        const nk_jv *sub = marg(a, 0, "sub");
        if (!sub || sub->t != JV_STR || a->n > 1) return arg_err(c, name, line);
        const nk_jstr *t = sub->u.s;
        if (!strcmp(name, "count")) {
            int64_t k = 0;
            if (t->len == 0) k = (int64_t)nk_ju_count(s->s, s->len) + 1;
            else for (size_t i = 0; i + t->len <= s->len;) {
                const char *p = memmem(s->s + i, s->len - i, t->s, t->len);
                if (!p) break;
                k++;
                i = (size_t)(p - s->s) + t->len;
            }
            *out = jv_int(k);
            return 0;
        }
        bool right = name[0] == 'r';
        size_t found = SIZE_MAX;
        if (t->len <= s->len) {
            if (!right) { const char *p = memmem(s->s, s->len, t->s, t->len); if (p) found = (size_t)(p - s->s); }
            else for (size_t i = s->len - t->len + 1; i-- > 0;) if (!memcmp(s->s + i, t->s, t->len)) { found = i; break; }
        }
        if (found == SIZE_MAX) {
            if (strstr(name, "index")) return nk_jfail(c, NOOK_EINVAL, line, "substring not found"), -1;
            *out = jv_int(-1);
            return 0;
        }
        *out = jv_int((int64_t)nk_ju_count(s->s, found));   /* code point offset */
        return 0;
    }
    if (!strcmp(name, "join")) {
        const nk_jv *it = marg(a, 0, "iterable");
        nk_jlist *items;
        if (!it || nk_jiter(c, *it, line, &items)) return it ? -1 : arg_err(c, name, line);
        nk_jbuf b = {0};
        for (size_t i = 0; i < items->n; i++) {
            if (items->v[i].t != JV_STR)
                return nk_jfail(c, NOOK_EINVAL, line, "sequence item %zu: expected str instance, %s found", i,
                                nk_jv_type_name(items->v[i])), -1;
            if ((i && nk_jbuf_put(c, &b, s->s, s->len)) || nk_jbuf_put(c, &b, items->v[i].u.s->s, items->v[i].u.s->len))
                return -1;
        }
        nk_jstr *r = nk_jbuf_str(c, &b);
        if (!r) return -1;
        *out = jv_str(r);
        return 0;
    }
    if (!strcmp(name, "isdigit") || !strcmp(name, "isalpha") || !strcmp(name, "isalnum") ||
        !strcmp(name, "isspace") || !strcmp(name, "islower") || !strcmp(name, "isupper")) {
        bool ok = s->len > 0, cased = false;
        for (size_t i = 0; i < s->len && ok;) {
            uint32_t cp;
            i += nk_ju_decode(s->s, s->len, i, &cp);
            if (cp >= 0x80 && strcmp(name, "isspace"))
                return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'str.%s on non-ASCII text'", name), -1;
            bool d = cp >= '0' && cp <= '9', lo = cp >= 'a' && cp <= 'z', up = cp >= 'A' && cp <= 'Z';
            if (!strcmp(name, "isdigit")) ok = d;
            else if (!strcmp(name, "isalpha")) ok = lo || up;
            else if (!strcmp(name, "isalnum")) ok = d || lo || up;
            else if (!strcmp(name, "isspace")) ok = nk_ju_isspace(cp);
            else if (!strcmp(name, "islower")) { if (up) ok = false; if (lo) cased = true; }
            else { if (lo) ok = false; if (up) cased = true; }
        }
        if (!strcmp(name, "islower") || !strcmp(name, "isupper")) ok = ok && cased;
        *out = jv_bool(ok);
        return 0;
    }
    if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
        const nk_jv *p = marg(a, 0, NULL);
        if (!p || p->t != JV_STR) return arg_err(c, name, line);
        bool hit;
        if (affix(c, s, p, name[6] == 'p', line, &hit)) return -1;
        size_t k = hit ? p->u.s->len : 0;
        nk_jstr *r = nk_jstr_new(c, name[6] == 'p' ? s->s + k : s->s, s->len - k);
        if (!r) return -1;
        *out = jv_str(r);
        return 0;
    }
    if (!strcmp(name, "splitlines")) {
        nk_jlist *l = nk_jlist_new(c, 0);
        if (!l) return -1;
        size_t i = 0;
        while (i < s->len) {
            size_t e = i;
            while (e < s->len && s->s[e] != '\n' && s->s[e] != '\r') e++;
            nk_jstr *ln = nk_jstr_new(c, s->s + i, e - i);
            if (!ln || nk_jlist_push(c, l, jv_str(ln))) return -1;
            if (e < s->len && s->s[e] == '\r' && e + 1 < s->len && s->s[e + 1] == '\n') e++;
            i = e + 1;
        }
        *out = (nk_jv){ .t = JV_LIST, .u.l = l };
        return 0;
    }
    if (!strcmp(name, "format") || !strcmp(name, "format_map"))
        return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'str.%s'", name), -1;
    *handled = false;
    return 0;
}

int nk_jmethod(nk_jctx *c, nk_jv obj, const char *name, const nk_jv *args, size_t n,
               const char **kwn, const nk_jv *kwv, size_t nkw, int line, nk_jv *out, bool *handled) {
    margs a = { args, n, kwn, kwv, nkw };
    *handled = false;
    if (obj.t == JV_STR) return str_method(c, obj.u.s, name, &a, line, out, handled);
    if (obj.t == JV_DICT) {
        const nk_jdict *d = obj.u.d;
        if (!strcmp(name, "items") || !strcmp(name, "keys") || !strcmp(name, "values")) {
            *handled = true;
            if (n || nkw) return arg_err(c, name, line);
            nk_jlist *l;
            if (name[0] == 'i') { if (nk_jdict_items(c, d, &l)) return -1; }
            else {
                if (!(l = nk_jlist_new(c, d->n))) return -1;
                for (size_t i = 0; i < d->n; i++) l->v[i] = name[0] == 'k' ? jv_str(d->k[i]) : d->v[i];
                l->n = d->n;
            }
            *out = (nk_jv){ .t = JV_LIST, .u.l = l };
            return 0;
        }
        if (!strcmp(name, "get")) {
            *handled = true;
            const nk_jv *k = marg(&a, 0, "key"), *def = marg(&a, 1, "default");
            if (!k) return arg_err(c, name, line);
            const nk_jv *v = k->t == JV_STR ? nk_jdict_get(d, k->u.s->s, k->u.s->len) : NULL;
            *out = v ? *v : def ? *def : jv_none();
            return 0;
        }
        static const char *const unsafe[] = { "pop", "popitem", "update", "setdefault", "clear" };
        for (size_t i = 0; i < NK_ARRAY_LEN(unsafe); i++)
            if (!strcmp(name, unsafe[i]))
                return *handled = true, nk_jfail(c, NOOK_EINVAL, line, "access to attribute '%s' of 'dict' object is unsafe", name), -1;
        if (!strcmp(name, "copy")) { *handled = true; *out = obj; return 0; }
        return 0;
    }
    if (jv_is_seq(obj)) {
        const nk_jlist *l = obj.u.l;
        if (!strcmp(name, "index") || !strcmp(name, "count")) {
            *handled = true;
            const nk_jv *x = marg(&a, 0, NULL);
            if (!x) return arg_err(c, name, line);
            int64_t k = 0;
            for (size_t i = 0; i < l->n; i++) {
                if (!nk_jv_eq(l->v[i], *x)) continue;
                if (name[0] == 'i') { *out = jv_int((int64_t)i); return 0; }
                k++;
            }
            if (name[0] == 'i') return nk_jfail(c, NOOK_EINVAL, line, "value is not in list"), -1;
            *out = jv_int(k);
            return 0;
        }
        static const char *const unsafe[] = { "append", "pop", "extend", "insert", "remove", "sort", "reverse", "clear" };
        for (size_t i = 0; i < NK_ARRAY_LEN(unsafe); i++)
            if (!strcmp(name, unsafe[i]))
                return *handled = true, nk_jfail(c, NOOK_EINVAL, line, "access to attribute '%s' of '%s' object is unsafe",
                                                 name, nk_jv_type_name(obj)), -1;
        return 0;
    }
    if (obj.t == JV_LOOP && !strcmp(name, "cycle")) {
        *handled = true;
        if (!n) return nk_jfail(c, NOOK_EINVAL, line, "no items for cycling given"), -1;
        *out = args[obj.u.loop->index0 % (int64_t)n];
        return 0;
    }
    return 0;
}

/* ---- strftime (C locale) --------------------------------------------------------------------- */
static const char *const wday_name[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" };
static const char *const mon_name[] = { "January", "February", "March", "April", "May", "June", "July", "August",
                                        "September", "October", "November", "December" };

/* days since 1970-01-01 of a civil date (proleptic Gregorian) */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int do_strftime(nk_jctx *c, const nk_jstr *fmt, const nk_chat_time *t, int line, nk_jv *out) {
    if (t->month < 1 || t->month > 12 || t->day < 1 || t->day > 31)
        return nk_jfail(c, NOOK_EINVAL, line, "strftime_now: invalid date"), -1;
    int64_t days = days_from_civil(t->year, t->month, t->day);
    int wday = (int)(((days % 7) + 11) % 7);   /* 1970-01-01 was a Thursday (4) */
    int yday = (int)(days - days_from_civil(t->year, 1, 1));
    nk_jbuf b = {0};
    for (size_t i = 0; i < fmt->len; i++) {
        char ch = fmt->s[i];
        if (ch != '%' || i + 1 >= fmt->len) { if (nk_jbuf_put(c, &b, &ch, 1)) return -1; continue; }
        ch = fmt->s[++i];
        bool nopad = false;
        if (ch == '-' && i + 1 < fmt->len) { nopad = true; ch = fmt->s[++i]; }
        char tmp[64];
        int h12 = t->hour % 12 == 0 ? 12 : t->hour % 12;
        int v = -1, width = 2;
        const char *s = NULL;
        switch (ch) {
        case 'a': snprintf(tmp, sizeof tmp, "%.3s", wday_name[wday]); s = tmp; break;
        case 'A': s = wday_name[wday]; break;
        case 'b': case 'h': snprintf(tmp, sizeof tmp, "%.3s", mon_name[t->month - 1]); s = tmp; break;
        case 'B': s = mon_name[t->month - 1]; break;
        case 'd': v = t->day; break;
        case 'e': snprintf(tmp, sizeof tmp, nopad ? "%d" : "%2d", t->day); s = tmp; break;
        case 'm': v = t->month; break;
        case 'y': v = (int)(((t->year % 100) + 100) % 100); break;
        case 'Y': snprintf(tmp, sizeof tmp, "%d", t->year); s = tmp; break;
        case 'H': v = t->hour; break;
        case 'I': v = h12; break;
        case 'M': v = t->minute; break;
        case 'S': v = t->second; break;
        case 'p': s = t->hour < 12 ? "AM" : "PM"; break;
        case 'j': v = yday + 1; width = 3; break;
        case 'w': v = wday; width = 1; break;
        case 'u': v = wday == 0 ? 7 : wday; width = 1; break;
        case 'Z': case 'z': s = ""; break;   /* naive datetime: empty, as Python */
        case 'D': snprintf(tmp, sizeof tmp, "%02d/%02d/%02d", t->month, t->day, ((t->year % 100) + 100) % 100); s = tmp; break;
        case 'F': snprintf(tmp, sizeof tmp, "%d-%02d-%02d", t->year, t->month, t->day); s = tmp; break;
        case 'T': snprintf(tmp, sizeof tmp, "%02d:%02d:%02d", t->hour, t->minute, t->second); s = tmp; break;
        case 'R': snprintf(tmp, sizeof tmp, "%02d:%02d", t->hour, t->minute); s = tmp; break;
        case '%': s = "%"; break;
        default:
            return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct 'strftime %%%c'", ch >= 32 && ch < 127 ? ch : '?'), -1;
        }
        if (v >= 0) {
            if (nopad) snprintf(tmp, sizeof tmp, "%d", v);
            else snprintf(tmp, sizeof tmp, "%0*d", width, v);
            s = tmp;
        }
        if (nk_jbuf_puts(c, &b, s)) return -1;
    }
    nk_jstr *r = nk_jbuf_str(c, &b);
    if (!r) return -1;
    *out = jv_str(r);
    return 0;
}

/* ---- global functions ---------------------------------------------------------------------- */
enum { FN_RANGE, FN_NAMESPACE, FN_DICT, FN_RAISE, FN_STRFTIME, FN_JOINER, FN_CYCLER, FN_LIPSUM, FN_COUNT };
static const char *const fn_names[FN_COUNT] = {
    "range", "namespace", "dict", "raise_exception", "strftime_now", "joiner", "cycler", "lipsum",
};

int nk_jglobal_fn(const char *name) {
    for (int i = 0; i < FN_COUNT; i++) if (!strcmp(fn_names[i], name)) return i;
    return -1;
}

const char *nk_jglobal_fn_name(int fn) { return fn >= 0 && fn < FN_COUNT ? fn_names[fn] : "?"; }

#define MAX_RANGE 100000   /* jinja2's sandbox refuses larger ranges */

int nk_jcall_builtin(nk_jctx *c, int fn, const nk_jv *args, size_t n, const char **kwn,
                     const nk_jv *kwv, size_t nkw, int line, nk_jv *out) {
    switch (fn) {
    case FN_RANGE: {
        int64_t v[3] = { 0, 0, 1 };
        if (n < 1 || n > 3 || nkw) return arg_err(c, "range", line);
        for (size_t i = 0; i < n; i++) {
            if (args[i].t != JV_INT && args[i].t != JV_BOOL)
                return nk_jfail(c, NOOK_EINVAL, line, "'%s' object cannot be interpreted as an integer",
                                nk_jv_type_name(args[i])), -1;
            v[n == 1 ? 1 : i] = args[i].t == JV_INT ? args[i].u.i : args[i].u.b;
        }
        if (v[2] == 0) return nk_jfail(c, NOOK_EINVAL, line, "range() arg 3 must not be zero"), -1;
        /* count without overflow */
        double cnt = v[2] > 0 ? ((double)v[1] - (double)v[0]) / (double)v[2] : ((double)v[0] - (double)v[1]) / (double)-v[2];
        if (cnt > MAX_RANGE)
            return nk_jfail(c, NOOK_ERANGE, line, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
                            MAX_RANGE), -1;
        nk_jlist *l = nk_jlist_new(c, 0);
        if (!l) return -1;
        for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
            if (nk_jlist_push(c, l, jv_int(i))) return -1;
            if (v[2] > 0 ? i > INT64_MAX - v[2] : i < INT64_MIN - v[2]) break;
        }
        *out = (nk_jv){ .t = JV_LIST, .u.l = l };
        return 0;
    }
    case FN_NAMESPACE: case FN_DICT: {
        nk_jdict *d = nk_jdict_new(c, nkw);
        if (!d) return -1;
        for (size_t i = 0; i < n; i++) {
            if (args[i].t != JV_DICT && args[i].t != JV_NS) return arg_err(c, fn_names[fn], line);
            for (size_t k = 0; k < args[i].u.d->n; k++)
                if (nk_jdict_set(c, d, args[i].u.d->k[k], args[i].u.d->v[k])) return -1;
        }
        for (size_t i = 0; i < nkw; i++) {
            nk_jstr *k = nk_jstr_new(c, kwn[i], strlen(kwn[i]));
            if (!k || nk_jdict_set(c, d, k, kwv[i])) return -1;
        }
        *out = (nk_jv){ .t = fn == FN_NAMESPACE ? JV_NS : JV_DICT, .u.d = d };
        return 0;
    }
    case FN_RAISE: {
        const nk_jstr *m = n ? nk_jv_to_str(c, args[0]) : NULL;
        if (n && !m) return -1;
        return nk_jfail(c, NOOK_EINVAL, 0, "template error: %s", m ? m->s : ""), -1;
    }
    case FN_STRFTIME: {
        if (n != 1 || args[0].t != JV_STR) return arg_err(c, "strftime_now", line);
        nk_chat_time t = c->now;
        if (!t.set) {
            time_t now = time(NULL);
            struct tm tm;
            localtime_r(&now, &tm);
            t = (nk_chat_time){ true, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec };
        }
        return do_strftime(c, args[0].u.s, &t, line, out);
    }
    default:
        return nk_jfail(c, NOOK_EUNSUPPORTED, line, "unsupported construct '%s()'", nk_jglobal_fn_name(fn)), -1;
    }
}
