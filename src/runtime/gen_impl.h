/*
 * gen_impl.h — the insides of a generation model (generate.c), shared with
 * the sequences (gen_seq.c).  Private to src/runtime.
 */
#ifndef SILICA_RUNTIME_GEN_IMPL_H
#define SILICA_RUNTIME_GEN_IMPL_H

#include <pthread.h>

#include <cjson/cJSON.h>

#include "silica/generate.h"
#include "silica/grammar.h"
#include "silica/template.h"

#define SL_GEN_MAX_EOS 32

struct sl_gen_model {
    char *path;          /* as given: every message names it */
    sl_model *m;
    const sl_model_config *c;
    sl_tokenizer *tok;   /* NULL: no tokenizer */
    sl_tmpl *tmpl;       /* NULL: no chat template */
    sl_tmpl *tmpl_tools; /* the named "tool_use" template, rendered when tools are given; NULL: tmpl */
    sl_tool_format tool_format;   /* how the template (with tools) writes tool calls */
    cJSON *special;      /* special tokens for the template context */
    int32_t eos[SL_GEN_MAX_EOS];
    int n_eos;
    int32_t bos;         /* -1: none */
    sl_grammar_vocab *gvocab;    /* the tokens as bytes for structured output, built on first use */
    pthread_mutex_t gvocab_mu;
};

/* The model's grammar vocabulary (built once, under gvocab_mu). */
int gen_grammar_vocab(sl_gen_model *g, const sl_grammar_vocab **out, sl_error *err);

#endif
