/*
 * engine.h: internals of the engine layer (generation loop, scheduler). The public API
 * is the "Generation" and "Scheduler" sections of nook.h.
 */
#ifndef NK_ENGINE_H
#define NK_ENGINE_H

#include "base/base.h"

/* Whether a chat template thinks: Qwen3's writes <think> blocks and reads
 * enable_thinking. */
bool nk_template_thinks(const char *tmpl);

#endif /* NK_ENGINE_H */
