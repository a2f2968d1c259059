#!/usr/bin/env bash
# Regenerate the embedding goldens of tests/model/model_embed.c with llama.cpp:
#   LLAMACPP_REF=DIR tests/data/model/embed/make_goldens.sh [BUILD_DIR]
# (DIR: the node-llama-cpp install, see ../shared/tools/ref/README.md)
# The test writes its model files into a folder (NOOK_EMBED_WRITE) and prints
# "name path" per file; llama.cpp embeds texts.txt on each (bench/llamacpp_ext.mjs).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
build=${1:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
NOOK_TEST_MODELS=${NOOK_TEST_MODELS:-../shared/models} NOOK_EMBED_WRITE="$dir" "$build/model_model_embed" |
while read -r name path; do
    [ -f "$path" ] || continue
    node bench/llamacpp_ext.mjs embed -m "$path" --texts tests/data/model/embed/texts.txt --ctx 64 --plain \
        > "tests/data/model/embed/$name.txt"
    echo "$name: $(grep -c '^E' "tests/data/model/embed/$name.txt") texts"
done
