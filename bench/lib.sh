# bench/lib.sh: helpers the side-by-side scripts (vs-llamacpp.sh, depth-vs-llamacpp.sh,
# vs-ikllama.sh, batched-vs-llamacpp.sh, embed-vs-llamacpp.sh) share; sourced, not run.

# field FILE KEY: a numeric field of the last JSON line of FILE ("nan" when absent)
field() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").pop());const v=o[process.argv[2]];console.log(v==null?"nan":v)' "$1" "$2"; }
# stats V...: "min median max" of the numbers
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f %.2f %.2f", a[1], m, a[NR]}'; }
# ratio X Y: X / Y to 3 decimals
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.3f", x/y}'; }
