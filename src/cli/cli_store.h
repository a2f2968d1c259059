/*
 * cli_store.h: the store's verbs and how every verb turns MODEL (a path or a name)
 * into a GGUF through the store (src/store/store.h).
 */
#ifndef NOOK_CLI_STORE_H
#define NOOK_CLI_STORE_H

#include "store/store.h"

#include <stddef.h>

/* Resolves MODEL: an existing file is a path; otherwise a name in the store (pulled
 * first when pull_missing and absent, with progress on a terminal). On failure prints
 * one "nook: ..." line saying what to do and returns CLI_EFAIL. ref is freed with
 * nk_model_ref_free on success. */
int cli_resolve_model(const char *what, bool pull_missing, nk_model_ref *ref);
/* The GGUF path for MODEL (no pull); strings that look like paths pass through. */
int cli_model_path(const char *what, char *path, size_t cap);
/* Whether a pull made by cli_resolve_model may use plain http (run's --insecure). */
void cli_store_set_insecure(bool on);

int cli_pull(int argc, char **argv);
int cli_push(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_cp(int argc, char **argv);
int cli_create(int argc, char **argv);

#endif
