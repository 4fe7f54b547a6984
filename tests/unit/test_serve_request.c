/*
 * test_serve_request.c — request validation of `silica serve`
 * (src/serve/request.c): each API's defaults, the fields it reads, and the
 * 400 (naming the field) for malformed JSON, wrong types, out-of-range
 * values, unknown fields and what is not supported yet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve/srv_request.h"

static void ok(srv_api api, const char *body, srv_params *p) {
    srv_error e = {0};
    int rc = srv_parse_request(api, body, strlen(body), p, &e);
    if (rc) fail_msg("%s -> %s", body, e.msg);
}

/* A refusal with this status, naming this field, with this text in the message. */
static void refused(srv_api api, const char *body, int status, const char *param, const char *needle) {
    srv_params p;
    srv_error e = {0};
    assert_int_equal(srv_parse_request(api, body, strlen(body), &p, &e), -1);
    assert_int_equal(e.status, status);
    assert_string_equal(e.param, param);
    if (!strstr(e.msg, needle)) fail_msg("'%s' not in '%s'", needle, e.msg);
}

static void test_openai_chat(void **state) {
    (void)state;
    srv_params p;
    ok(SRV_OAI_CHAT,
       "{\"model\":\"demo\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi \"},{\"type\":\"text\",\"text\":\"there\"}]}],"
       "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_completion_tokens\":7,\"stop\":\"\\n\","
       "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"min_p\":0.05,\"seed\":42,\"presence_penalty\":0.5,"
       "\"frequency_penalty\":-0.5,\"logprobs\":true,\"top_logprobs\":3,\"n\":2,\"logit_bias\":{\"15\":-100},"
       "\"user\":\"x\",\"tools\":[],\"tool_choice\":\"none\",\"response_format\":{\"type\":\"text\"}}",
       &p);
    assert_string_equal(p.model, "demo");
    assert_int_equal(cJSON_GetArraySize(p.messages), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(p.messages, 0), "role")->valuestring, "system");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(p.messages, 1), "content")->valuestring, "hi there");
    assert_true(p.stream && p.include_usage && p.logprobs && p.seed_set);
    assert_int_equal(p.max_tokens, 7);
    assert_int_equal(p.n_stops, 1);
    assert_string_equal(p.stops[0], "\n");
    assert_true(p.sampling.temperature == 0.5f && p.sampling.top_p == 0.9f && p.sampling.top_k == 40);
    assert_true(p.sampling.min_p == 0.05f && p.sampling.presence_penalty == 0.5f);
    assert_int_equal(p.sampling.seed, 42);
    assert_int_equal(p.top_logprobs, 3);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.sampling.n_bias, 1);
    assert_int_equal(p.sampling.bias[0].id, 15);
    srv_params_free(&p);
    /* defaults: OpenAI's temperature 1, top_p 1, one choice, not streamed */
    ok(SRV_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":null}", &p);
    assert_true(p.sampling.temperature == 1.0f && p.sampling.top_p == 1.0f && !p.stream && p.n == 1 && !p.seed_set);
    assert_null(p.model);
    srv_params_free(&p);
}

static void test_openai_errors(void **state) {
    (void)state;
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
    refused(SRV_OAI_CHAT, "{\"messages\":[", 400, "", "not valid JSON");
    refused(SRV_OAI_CHAT, "[1]", 400, "", "JSON object");
    refused(SRV_OAI_CHAT, "", 400, "", "empty");
    refused(SRV_OAI_CHAT, "{} x", 400, "", "after the JSON value");
    refused(SRV_OAI_CHAT, "{}", 400, "messages", "missing");
    snprintf(b, sizeof b, "{%s,\"temperature\":\"hot\"}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "temperature", "must be a number");
    snprintf(b, sizeof b, "{%s,\"temperature\":true}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "temperature", "must be a number");
    snprintf(b, sizeof b, "{%s,\"top_p\":1.5}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "top_p", "between 0 and 1");
    snprintf(b, sizeof b, "{%s,\"max_tokens\":2.5}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "max_tokens", "integer");
    snprintf(b, sizeof b, "{%s,\"max_tokens\":0}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "max_tokens", "between 1");
    snprintf(b, sizeof b, "{%s,\"frobnicate\":1}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "frobnicate", "unknown field");
    snprintf(b, sizeof b, "{%s,\"stream_options\":{\"include_usage\":true}}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "stream_options", "stream");
    snprintf(b, sizeof b, "{%s,\"top_logprobs\":2}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "top_logprobs", "logprobs");
    snprintf(b, sizeof b, "{%s,\"stop\":[\"a\",7]}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "stop", "string");
    snprintf(b, sizeof b, "{%s,\"logit_bias\":{\"x\":1}}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "logit_bias", "token id");
    snprintf(b, sizeof b, "{%s,\"tools\":[{\"type\":\"function\"}]}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "tools[0]", "function");
    snprintf(b, sizeof b, "{%s,\"tool_choice\":\"required\"}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "tool_choice", "needs 'tools'");
    snprintf(b, sizeof b,
             "{%s,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
             "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "tool_choice", "not among");
    snprintf(b, sizeof b, "{%s,\"response_format\":{\"type\":\"json_schema\"}}", msgs);
    refused(SRV_OAI_CHAT, b, 400, "response_format", "'response_format.json_schema' is missing");
    refused(SRV_OAI_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "messages[0]", "role");
    refused(SRV_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"mood\":1}]}", 400, "messages[0].mood",
            "unknown field");
    refused(SRV_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
            "messages[0].content", "not supported");
    refused(SRV_OAI_CHAT, "{\"messages\":[]}", 400, "messages", "empty");
}

static void test_completions(void **state) {
    (void)state;
    srv_params p;
    ok(SRV_OAI_COMPLETION, "{\"prompt\":\"Once\",\"logprobs\":2,\"max_tokens\":5,\"echo\":false}", &p);
    assert_string_equal(p.prompt, "Once");
    assert_true(p.logprobs);
    assert_int_equal(p.top_logprobs, 2);
    srv_params_free(&p);
    ok(SRV_OAI_COMPLETION, "{\"prompt\":[1,2,3]}", &p);
    assert_int_equal(p.n_prompt_ids, 3);
    assert_int_equal(p.prompt_ids[2], 3);
    srv_params_free(&p);
    ok(SRV_OAI_COMPLETION, "{\"prompt\":[\"one\"]}", &p);
    assert_string_equal(p.prompt, "one");
    srv_params_free(&p);
    refused(SRV_OAI_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt", "several prompts");
    refused(SRV_OAI_COMPLETION, "{\"prompt\":[1,-2]}", 400, "prompt", "prompt[1]");
    refused(SRV_OAI_COMPLETION, "{\"prompt\":\"x\",\"echo\":true}", 400, "echo", "not supported yet");
    refused(SRV_OAI_COMPLETION, "{\"prompt\":\"x\",\"messages\":[]}", 400, "messages", "unknown field");
    refused(SRV_OAI_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":true}", 400, "logprobs", "integer");
}

static void test_ollama(void **state) {
    (void)state;
    srv_params p;
    ok(SRV_OLLAMA_CHAT,
       "{\"model\":\"demo:latest\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"images\":[]}],"
       "\"options\":{\"temperature\":0,\"num_predict\":9,\"seed\":3,\"stop\":[\"x\"],\"num_ctx\":2048},"
       "\"keep_alive\":\"5m\",\"format\":\"\"}",
       &p);
    assert_true(p.stream);   /* ollama streams by default */
    assert_true(p.sampling.temperature == 0.0f);
    assert_int_equal(p.max_tokens, 9);
    assert_int_equal(p.sampling.seed, 3);
    assert_int_equal(p.n_stops, 1);
    srv_params_free(&p);
    ok(SRV_OLLAMA_GENERATE, "{\"model\":\"demo\",\"prompt\":\"Once\",\"stream\":false,\"context\":[1,2]}", &p);
    assert_false(p.stream);
    assert_true(p.sampling.temperature == 0.8f && p.sampling.top_k == 40 && p.sampling.repeat_penalty == 1.1f);
    assert_int_equal(p.n_prompt_ids, 2);
    srv_params_free(&p);
    refused(SRV_OLLAMA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":{\"warp\":9}}", 400,
            "options.warp", "unknown field");
    refused(SRV_OLLAMA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"format\":\"xml\"}", 400, "format",
            "\"json\" or a JSON Schema");
    refused(SRV_OLLAMA_GENERATE, "{\"prompt\":\"x\",\"options\":{\"num_predict\":0}}", 400, "options.num_predict", "-1");
    refused(SRV_OLLAMA_GENERATE, "{\"prompt\":\"x\",\"max_tokens\":3}", 400, "max_tokens", "unknown field");
}

static void test_tokenize_show(void **state) {
    (void)state;
    srv_tok_params t;
    srv_error e;
    const char *b = "{\"content\":\"hello\",\"add_special\":false}";
    assert_int_equal(srv_parse_tokenize(b, strlen(b), false, &t, &e), 0);
    assert_string_equal(t.content, "hello");
    assert_false(t.add_special);
    srv_tok_params_free(&t);
    b = "{\"tokens\":[1,2]}";
    assert_int_equal(srv_parse_tokenize(b, strlen(b), true, &t, &e), 0);
    assert_int_equal(t.n_tokens, 2);
    srv_tok_params_free(&t);
    assert_int_equal(srv_parse_tokenize(b, strlen(b), false, &t, &e), -1);
    assert_string_equal(e.param, "tokens");
    char *m = NULL;
    b = "{\"name\":\"demo\"}";
    assert_int_equal(srv_parse_show(b, strlen(b), &m, &e), 0);
    assert_string_equal(m, "demo");
    free(m);
    b = "{\"verbose\":true}";
    assert_int_equal(srv_parse_show(b, strlen(b), &m, &e), -1);
    assert_string_equal(e.param, "model");
}

/* response_format / format: compiled grammars; bad schemas name the field and keyword */
static void test_structured(void **state) {
    (void)state;
    srv_params p;
    const char *m = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[1024];
    snprintf(b, sizeof b, "{%s,\"response_format\":{\"type\":\"json_object\"}}", m);
    ok(SRV_OAI_CHAT, b, &p);
    assert_non_null(p.grammar);
    srv_params_free(&p);
    ok(SRV_OAI_COMPLETION,
       "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\","
       "\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}}}",
       &p);
    assert_non_null(p.grammar);
    srv_params_free(&p);
    snprintf(b, sizeof b, "{%s,\"format\":{\"type\":\"array\",\"maxItems\":2}}", m);
    ok(SRV_OLLAMA_CHAT, b, &p);
    assert_non_null(p.grammar);
    srv_params_free(&p);
    snprintf(b, sizeof b, "{%s,\"format\":\"\"}", m);
    ok(SRV_OLLAMA_CHAT, b, &p);
    assert_null(p.grammar);
    srv_params_free(&p);
    snprintf(b, sizeof b,
             "{%s,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\","
             "\"schema\":{\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}}}}",
             m);
    refused(SRV_OAI_CHAT, b, 400, "response_format.json_schema.schema", "/properties/a: unsupported keyword 'pattern'");
    snprintf(b, sizeof b, "{%s,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"nom\":1}}}", m);
    refused(SRV_OAI_CHAT, b, 400, "response_format.json_schema", "unknown field 'response_format.json_schema.nom'");
    snprintf(b, sizeof b, "{%s,\"response_format\":{\"type\":\"yaml\"}}", m);
    refused(SRV_OAI_CHAT, b, 400, "response_format", "json_schema");
    snprintf(b, sizeof b, "{%s,\"format\":{\"type\":\"string\",\"format\":\"date\"}}", m);
    refused(SRV_OLLAMA_CHAT, b, 400, "format", "unsupported keyword 'format'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_chat), cmocka_unit_test(test_openai_errors), cmocka_unit_test(test_completions),
        cmocka_unit_test(test_ollama),      cmocka_unit_test(test_tokenize_show), cmocka_unit_test(test_structured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
