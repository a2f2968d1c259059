#!/bin/sh
# Regenerate the goldens of tests/model/model_arch_*.c from llama.cpp.
#   cmake --build build --target model_model_arch_qwen3 ...   (the six test programs)
#   tests/data/model/arch/make_goldens.sh build [ARCH...]       (from the repository root)
# Needs the llama.cpp reference installed (LLAMACPP_REF: see ../shared/tools/ref/README.md). The models
# are written to a temporary folder and deleted; only the .txt goldens are kept.
set -e
BUILD=${1:?usage: make_goldens.sh BUILD_DIR [ARCH...]}
shift
ARCHS=${*:-"qwen3 qwen2 llama3 mistral gemma3 phi3"}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
for a in $ARCHS; do
    NOOK_ARCH_WRITE=$DIR "$BUILD/model_model_arch_$a" | grep '\.gguf ' | while read -r path hash ids; do
        name=$(basename "$path" .gguf)
        LLAMACPP_REF=${LLAMACPP_REF:?set LLAMACPP_REF to the node-llama-cpp install (../shared/tools/ref/README.md)} node tests/data/model/arch/ref_goldens.mjs "$path" "$hash" "$ids" \
            > "tests/data/model/arch/$name.txt"
        echo "$name: $(grep '^greedy' "tests/data/model/arch/$name.txt")"
    done
done
