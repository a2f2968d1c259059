#!/bin/sh
# make.sh: regenerate the tokenizer parity corpus and its llama.cpp goldens
# (tests/data/tokenizer/corpus/), checked by tests/tokenizer/model_corpus_parity*.c.
#
#   LLAMACPP_REF=<node-llama-cpp install dir> tools/tok_goldens/make.sh [NOOK_BINARY]
#
# Run from the repository root. Steps:
#  1. node corpus.mjs writes corpus.txt (the strings are in corpus.mjs; the last few are
#     passages of $MODELS/tokenizers/war-and-peace.txt);
#  2. `nook import-tokenizer` turns $MODELS/hf/{qwen3,llama3,gemma3} (tokenizer.json +
#     tokenizer_config.json) into vocab-only GGUFs in a temporary folder;
#  3. node make.mjs tokenizes every string with llama.cpp (node-llama-cpp 3.21.1, the
#     shared reference; LLAMACPP_REF is where it is installed, see
#     ../shared/tools/ref/README.md) on those GGUFs, add_special off, parse_special off
#     and on, and writes <family>.special-<0|1>.out, one line of ids per string.
# NOOK_BINARY defaults to build/nook; MODELS to $NOOK_TEST_MODELS or ../shared/models.
# The goldens are llama.cpp's output, not nook's: nook only makes the GGUF both read.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
nook=${1:-build/nook}
models=${NOOK_TEST_MODELS:-../shared/models}
out=tests/data/tokenizer/corpus
: "${LLAMACPP_REF:?set LLAMACPP_REF to the node-llama-cpp install (see ../shared/tools/ref/README.md)}"
[ -x "$nook" ] || { echo "make.sh: $nook is not an executable (build the nook target)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$out"
node "$here/corpus.mjs" "$models/tokenizers/war-and-peace.txt" "$out/corpus.txt"
set --
for fam in qwen3 llama3 gemma3; do
    "$nook" import-tokenizer "$models/hf/$fam" "$tmp/$fam.gguf"
    set -- "$@" "$fam=$tmp/$fam.gguf"
done
LLAMACPP_REF="$LLAMACPP_REF" node "$here/make.mjs" "$out/corpus.txt" "$out" "$@"
