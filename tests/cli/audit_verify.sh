#!/usr/bin/env bash
# audit_verify.sh: `nook audit verify` exits 0 on an intact ledger and 1 after any edit,
# deletion or reordering of a line (or removal of the head); `nook audit show` prints
# every entry, --json exactly as stored. The intact ledger is the fuzz seed, whose chain
# was computed independently (Python hashlib).
. "$(dirname "$0")/lib.bash"

export NOOK_HOME="$TMP/home"
mkdir -p "$NOOK_HOME"
seed="tests/fuzz/corpus/ledger/valid"
python3 - "$seed" "$NOOK_HOME" <<'PY' || { echo "SKIP: python3 missing"; exit 77; }
import sys
d = open(sys.argv[1], 'rb').read(); a, b = d.split(b'\0')
open(sys.argv[2] + '/egress.jsonl', 'wb').write(a); open(sys.argv[2] + '/egress.head', 'wb').write(b)
PY
cp "$NOOK_HOME/egress.jsonl" "$TMP/good"

run_cmd "$NOOK" audit verify
check_eq "verify intact" "$rc" 0
check_contains "verify summary" "$out" "3 lines (1 egress, 1 complete, 0 pending, 1 pulls)"
run_cmd "$NOOK" audit show --json
check_eq "show --json exit" "$rc" 0
check_eq "show --json is the file" "$out" "$(cat "$TMP/good")"
run_cmd "$NOOK" audit show
check_contains "show egress" "$out" "egress   api.example.com model=gpt policy=auto"
check_contains "show pull" "$out" "(no user content)"

tamper() {  # NAME then a command that rewrites $NOOK_HOME/egress.jsonl from $TMP/good
    local name="$1"; shift
    "$@"
    run_cmd "$NOOK" audit verify
    check_eq "verify after $name" "$rc" 1
    check_contains "message after $name" "$err" "nook: egress ledger"
    cp "$TMP/good" "$NOOK_HOME/egress.jsonl"
}
tamper "edit of line 1" sed -i '1s/"bytes":10/"bytes":11/' "$NOOK_HOME/egress.jsonl"
tamper "edit of line 3" sed -i '3s/qwen3:8b/qwen3:4b/' "$NOOK_HOME/egress.jsonl"
tamper "deletion of line 1" sed -i '1d' "$NOOK_HOME/egress.jsonl"
tamper "deletion of line 2" sed -i '2d' "$NOOK_HOME/egress.jsonl"
tamper "deletion of line 3" sed -i '3d' "$NOOK_HOME/egress.jsonl"
tamper "swap of lines 1,2" sed -i -n '2p;1h;3{x;p;x;p}' "$NOOK_HOME/egress.jsonl"
run_cmd "$NOOK" audit verify
check_eq "verify restored" "$rc" 0
rm "$NOOK_HOME/egress.head"
run_cmd "$NOOK" audit verify
check_eq "verify without head" "$rc" 1
run_cmd "$NOOK" audit frobnicate
check_eq "bad subcommand" "$rc" 2
finish
