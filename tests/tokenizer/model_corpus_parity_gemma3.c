/* model_corpus_parity_gemma3: the Gemma 3 part of model_corpus_parity.c (see there); its
 * own program because importing Gemma 3's 262k-token tokenizer.json dominates the time
 * under ASan. */
#define NK_CORPUS_ONLY "gemma3"
#include "tokenizer/model_corpus_parity.c"
