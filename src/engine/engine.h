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

/* Restart the request's clock (prompt eval and total durations count from here): the
 * scheduler calls it when a queued request gets its slot. */
void nk_gen_restart_clock(nook_gen *g);

#endif /* NK_ENGINE_H */
