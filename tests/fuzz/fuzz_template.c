/*
 * fuzz_template.c — libFuzzer target for the chat-template engine: each
 * input is compiled as a template and, when it compiles, rendered against a
 * small conversation (system/user/assistant with tool calls, tools, special
 * tokens) under tight limits, so lexer, parser, evaluator and builtins all
 * see hostile input.  Seeded with real templates from tests/data/templates (tools/make_fuzz_seeds.py).
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/template.h"

static const char k_ctx[] =
    "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"add_generation_prompt\":true,\"enable_thinking\":false,"
    "\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"hi \\u00e9\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"reasoning_content\":\"r\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[true,null,2.5]}}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"},{\"role\":\"user\",\"content\":[{\"type\":"
    "\"text\",\"text\":\"t\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":{\"type\":"
    "\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cJSON *ctx;
    if (!ctx) ctx = cJSON_Parse(k_ctx);
    sl_error err;
    sl_tmpl *t = NULL;
    if (sl_tmpl_compile((const char *)data, size, "fuzz", &t, &err) != 0) return 0;
    sl_tmpl_limits lim = {.max_output = 1u << 20, .max_iterations = 20000, .max_depth = 40, .max_memory = 64u << 20};
    char *out = NULL;
    size_t n = 0;
    if (sl_tmpl_render(t, ctx, &lim, &out, &n, &err) == 0) free(out);
    sl_tmpl_free(t);
    return 0;
}
