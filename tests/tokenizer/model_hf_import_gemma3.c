/* model_hf_import_gemma3: the Gemma 3 part of model_hf_import.c (see there). */
#define NK_HF_IMPORT_GEMMA3 1
#include "tokenizer/model_hf_import.c"
