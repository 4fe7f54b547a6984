/*
 * fuzz_toolcall.c — libFuzzer target for the tool-call parser
 * (src/template/toolcall.c): the first byte picks the format, the rest is a
 * model's answer.  Every input must parse (calls or content), with the
 * streaming offset never past the text, content a prefix of the text, every
 * call's arguments a JSON object, and nothing leaked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/toolcall.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    sl_tool_format f = (sl_tool_format)(data[0] % 4);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    size_t start = sl_tool_calls_start(f, text, len);
    if (start > len) abort();
    sl_tool_calls tc;
    if (sl_tool_calls_parse(f, text, len, &tc, NULL) != 0) return 0;   /* out of memory only */
    if (tc.content_len > len || memcmp(tc.content, text, tc.content_len) != 0) abort();
    if (tc.n_calls > 0 && tc.content_len > start) abort();   /* streamed content is never taken back */
    for (int i = 0; i < tc.n_calls; i++) {
        cJSON *a = cJSON_Parse(tc.calls[i].arguments);
        if (!cJSON_IsObject(a) || !tc.calls[i].name[0]) abort();
        cJSON_Delete(a);
    }
    sl_tool_calls_free(&tc);
    return 0;
}
