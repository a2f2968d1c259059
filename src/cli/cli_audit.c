/*
 * cli_audit.c: `nook audit show [--json]` prints the egress ledger ($NOOK_HOME/egress.jsonl,
 * src/net/ledger.h); `nook audit verify` checks its hash chain and head and exits 1 on any
 * edit, deletion, insertion or reordering. docs/privacy.md describes the ledger.
 */
#include "cli/cli.h"
#include "net/ledger.h"

#include <string.h>

static bool o_json;
static const cli_opt k_audit_opts[] = {
    { "json", 0, OPT_FLAG, &o_json, 0, 0, NULL, "show: print each entry as one JSON object per line, as stored" },
};
static const cli_verb_info k_audit_info = {
    "audit", "show|verify",
    "Show or verify the egress ledger (what nook sent off this machine)",
    k_audit_opts, (int)NK_ARRAY_LEN(k_audit_opts),
};

static const char *sval(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static bool show_line(json_t *o, const char *line, size_t len, void *ud) {
    (void)ud;
    if (o_json) {
        fwrite(line, 1, len, stdout);
        putchar('\n');
        return true;
    }
    const char *kind = sval(o, "kind");
    printf("#%-5lld %s  %-8s", (long long)json_integer_value(json_object_get(o, "seq")),
           sval(o, "time"), kind);
    if (strcmp(kind, "egress") == 0) {
        printf(" %s model=%s policy=%s reason=\"%s\" bytes=%lld body_sha256=%.16s...",
               sval(o, "host"), sval(o, "model"), sval(o, "policy"), sval(o, "reason"),
               (long long)json_integer_value(json_object_get(o, "bytes")), sval(o, "body_sha256"));
        json_t *red = json_object_get(o, "redactions");
        const char *k;
        json_t *v;
        if (json_is_object(red) && json_object_size(red)) {
            printf(" redacted=");
            bool first = true;
            json_object_foreach(red, k, v) {
                printf("%s%s:%lld", first ? "" : ",", k, (long long)json_integer_value(v));
                first = false;
            }
        }
    } else if (strcmp(kind, "complete") == 0) {
        printf(" ref=#%lld status=%lld bytes=%lld", (long long)json_integer_value(json_object_get(o, "ref")),
               (long long)json_integer_value(json_object_get(o, "status")),
               (long long)json_integer_value(json_object_get(o, "bytes")));
        json_t *c = json_object_get(o, "cost");
        if (json_is_number(c)) printf(" cost=%.6f", json_number_value(c));
        if (json_is_string(json_object_get(o, "error"))) printf(" error=\"%s\"", sval(o, "error"));
    } else if (strcmp(kind, "pull") == 0) {
        printf(" %s %s (no user content)", sval(o, "host"), sval(o, "what"));
    }
    putchar('\n');
    return true;
}

int cli_audit(int argc, char **argv) {
    int n_pos = 0;
    int rc = cli_parse(&k_audit_info, argc, argv, &n_pos);
    if (rc) return rc;
    if (n_pos != 1 || (strcmp(argv[0], "show") && strcmp(argv[0], "verify")))
        return cli_fail(CLI_EUSAGE, "audit: say 'show' or 'verify' (see 'nook audit --help')");
    bool show = strcmp(argv[0], "show") == 0;
    nk_ledger_report rep;
    nook_error err;
    if (nk_ledger_verify(NULL, show ? show_line : NULL, NULL, &rep, &err))
        return cli_fail(CLI_EFAIL, "%s", err.msg);
    if (!rep.ok) {
        if (rep.bad_line)
            return cli_fail(CLI_EFAIL, "egress ledger: line %llu: %s",
                            (unsigned long long)rep.bad_line, rep.problem);
        return cli_fail(CLI_EFAIL, "egress ledger: %s", rep.problem);
    }
    if (!show) {
        printf("egress ledger OK: %llu lines (%llu egress, %llu complete, %llu pending, %llu pulls)%s\n",
               (unsigned long long)rep.lines, (unsigned long long)rep.egress,
               (unsigned long long)rep.complete, (unsigned long long)rep.pending,
               (unsigned long long)rep.pull, rep.head_behind ? "; head one line behind (a crash?)" : "");
        if (rep.lines) printf("last line sha256 %s\n", rep.last_hash);
    }
    return CLI_OK;
}
