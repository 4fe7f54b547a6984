/*
 * cmd_template.c — `silica template MODEL --messages FILE.json [--tools
 * FILE.json] [--add-generation-prompt] [--var k=v]... [--template NAME]`:
 * render a conversation with the model's chat template exactly as
 * transformers' apply_chat_template(tokenize=False) does, and print it with
 * no newline added.
 *
 * Context built like transformers: special tokens (bos_token, eos_token, ...)
 * from the model directory, then messages (null keys dropped, reasoning
 * aliased), tools, documents, add_generation_prompt, then --var values
 * (parsed as JSON when they are valid JSON, else taken as strings), which
 * override the rest.
 *
 * `silica template [MODEL] --parse-tool-calls FILE [--tool-format NAME]`
 * reads a model's answer instead and prints, as JSON, the content and tool
 * calls toolcall.h finds in it (the format from MODEL's template unless
 * named) — what `silica serve` returns as message.tool_calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "silica/template.h"
#include "silica/toolcall.h"

static void help(void) {
    printf("usage: silica template MODEL --messages FILE.json [--tools FILE.json] [--documents FILE.json]\n"
           "                          [--add-generation-prompt] [--var KEY=VALUE]... [--template NAME]\n\n"
           "Render a conversation with MODEL's chat template, byte-for-byte like transformers'\n"
           "apply_chat_template(tokenize=False).  MODEL is a model directory (chat_template.jinja,\n"
           "chat_template.json or tokenizer_config.json) or a template file.\n\n"
           "  --messages FILE           JSON list of messages, or an object with \"messages\" (and optionally\n"
           "                            \"tools\" and \"documents\")\n"
           "  --tools FILE              JSON list of tool schemas\n"
           "  --documents FILE          JSON list of documents\n"
           "  --add-generation-prompt   end with the assistant's turn header\n"
           "  --var KEY=VALUE           extra variable (VALUE parsed as JSON if it is JSON, else a string),\n"
           "                            e.g. --var enable_thinking=false --var date_string=\"26 Jul 2024\"\n"
           "  --template NAME           pick a named template (default: tool_use with tools, else default)\n\n"
           "usage: silica template [MODEL] --parse-tool-calls FILE [--tool-format llama3|hermes|mistral]\n\n"
           "Print the tool calls in a model's answer (FILE, '-' for stdin) as JSON {\"format\", \"content\",\n"
           "\"tool_calls\": [{\"name\", \"arguments\" (a JSON string), \"id\"}]}, as silica serve returns them.\n"
           "The format is the one MODEL's chat template shows (Llama 3 JSON, Qwen/Hermes <tool_call>,\n"
           "Mistral [TOOL_CALLS]) unless --tool-format names it.\n");
}

static int load_json_file(const char *path, cJSON **out, sl_error *err) {
    char *buf;
    size_t n;
    int rc = sl_read_file(path, 256u << 20, &buf, &n, err);
    if (rc) return rc;
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!*out) {
        size_t off = end && end >= buf ? (size_t)(end - buf) : 0;
        free(buf);
        return sl_errorf(err, SL_EINVAL, "%s: not valid JSON (near byte %zu)", path, off);
    }
    free(buf);
    return SL_OK;
}

static int read_text(const char *path, char **buf, size_t *n, sl_error *err) {
    if (strcmp(path, "-") != 0) return sl_read_file(path, 64u << 20, buf, n, err);
    size_t cap = 4096;
    *n = 0;
    if (!(*buf = malloc(cap))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t k;
    while ((k = fread(*buf + *n, 1, cap - *n, stdin)) > 0)
        if ((*n += k) == cap) {
            char *b = cap < (64u << 20) ? realloc(*buf, cap *= 2) : NULL;
            if (!b) {
                free(*buf);
                return sl_errorf(err, SL_EINVAL, "stdin: more than 64 MiB");
            }
            *buf = b;
        }
    return 0;
}

/* --parse-tool-calls: the answer in `path` split by the tool-call format. */
static int parse_tool_calls(const char *model, const char *which, const char *path, const char *fmt_name) {
    sl_error err = {0};
    sl_tool_format f = SL_TOOL_FORMAT_NONE;
    char *src = NULL, *text = NULL, *out = NULL;
    size_t n = 0;
    sl_tool_calls tc = {0};
    cJSON *special = NULL;
    if (fmt_name) {
        if (sl_tool_format_from_name(fmt_name, &f, &err)) return cli_fail(&err);
    } else if (!model) {
        return cli_usage("template", "--parse-tool-calls needs MODEL or --tool-format");
    } else {
        if (sl_tmpl_load_chat_template(model, which, 1, &src, &special, &err)) return cli_fail(&err);
        f = sl_tool_format_of_template(src, strlen(src));
        free(src);
        cJSON_Delete(special);
    }
    if (read_text(path, &text, &n, &err) || sl_tool_calls_parse(f, text, n, &tc, &err)) {
        free(text);
        return cli_fail(&err);
    }
    cJSON *j = cJSON_CreateObject(), *calls = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "format", sl_tool_format_name(f));
    cJSON_AddStringToObject(j, "content", tc.content);
    cJSON_AddItemToObject(j, "tool_calls", calls);
    for (int i = 0; i < tc.n_calls; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", tc.calls[i].name);
        cJSON_AddStringToObject(c, "arguments", tc.calls[i].arguments);
        if (tc.calls[i].id) cJSON_AddStringToObject(c, "id", tc.calls[i].id);
        else cJSON_AddNullToObject(c, "id");
        cJSON_AddItemToArray(calls, c);
    }
    out = cJSON_PrintUnformatted(j);
    int rc = out && printf("%s\n", out) > 0 && fflush(stdout) == 0 ? 0 : 2;
    if (rc) fprintf(stderr, "silica: error: writing to stdout failed\n");
    free(out);
    cJSON_Delete(j);
    sl_tool_calls_free(&tc);
    free(text);
    return rc;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *msgs_path = NULL, *tools_path = NULL, *docs_path = NULL, *which = NULL;
    const char *answer_path = NULL, *tool_format = NULL;
    bool agp = false;
    const char **vars = calloc((size_t)argc + 1, sizeof *vars);
    size_t nvars = 0;
    if (!vars) return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            help();
            free(vars);
            return 0;
        }
        if ((v = cli_opt_value(argc, argv, &i, "--messages", &missing))) msgs_path = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--tools", &missing))) tools_path = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--documents", &missing))) docs_path = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--var", &missing))) vars[nvars++] = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--template", &missing))) which = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--parse-tool-calls", &missing))) answer_path = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--tool-format", &missing))) tool_format = v;
        else if (!strcmp(a, "--add-generation-prompt")) agp = true;
        else if (missing) {
            free(vars);
            return cli_usage("template", "%s needs a value", a);
        } else if (a[0] == '-' && a[1]) {
            free(vars);
            return cli_usage("template", "unknown option '%s'", a);
        } else if (!model) model = a;
        else {
            free(vars);
            return cli_usage("template", "unexpected argument '%s'", a);
        }
    }
    if (answer_path || tool_format) {
        free(vars);
        if (!answer_path) return cli_usage("template", "--tool-format goes with --parse-tool-calls FILE");
        return parse_tool_calls(model, which, answer_path, tool_format);
    }
    if (!model || !msgs_path) {
        free(vars);
        return cli_usage("template", "needs MODEL and --messages FILE.json");
    }
    sl_error err = {0};
    int rc = 2;
    cJSON *msgs_doc = NULL, *tools = NULL, *docs = NULL, *special = NULL, *ctx = NULL, *norm = NULL;
    char *src = NULL, *out = NULL;
    sl_tmpl *t = NULL;
    if (load_json_file(msgs_path, &msgs_doc, &err)) goto fail;
    const cJSON *msgs = msgs_doc;
    const cJSON *doc_tools = NULL, *doc_docs = NULL;
    if (cJSON_IsObject(msgs_doc)) {
        msgs = cJSON_GetObjectItemCaseSensitive(msgs_doc, "messages");
        doc_tools = cJSON_GetObjectItemCaseSensitive(msgs_doc, "tools");
        doc_docs = cJSON_GetObjectItemCaseSensitive(msgs_doc, "documents");
        if (!msgs) {
            sl_errorf(&err, SL_EINVAL, "%s: expected a list of messages or an object with \"messages\"", msgs_path);
            goto fail;
        }
    }
    if (!(norm = sl_tmpl_normalize_messages(msgs, &err))) {
        sl_error_prefix(&err, "%s: ", msgs_path);
        goto fail;
    }
    if (tools_path && load_json_file(tools_path, &tools, &err)) goto fail;
    if (docs_path && load_json_file(docs_path, &docs, &err)) goto fail;
    const cJSON *use_tools = tools ? tools : doc_tools;
    const cJSON *use_docs = docs ? docs : doc_docs;
    if (use_tools && !cJSON_IsArray(use_tools) && !cJSON_IsNull(use_tools)) {
        sl_errorf(&err, SL_EINVAL, "%s: tools must be a JSON list", tools ? tools_path : msgs_path);
        goto fail;
    }
    if (use_docs && !cJSON_IsArray(use_docs) && !cJSON_IsNull(use_docs)) {
        sl_errorf(&err, SL_EINVAL, "%s: documents must be a JSON list", docs ? docs_path : msgs_path);
        goto fail;
    }
    bool has_tools = use_tools && cJSON_IsArray(use_tools);
    if (sl_tmpl_load_chat_template(model, which, has_tools, &src, &special, &err)) goto fail;
    if (sl_tmpl_compile(src, strlen(src), model, &t, &err)) goto fail;
    ctx = special;
    special = NULL;
    cJSON_AddItemToObject(ctx, "messages", norm);
    norm = NULL;
    cJSON_AddItemToObject(ctx, "tools", use_tools ? cJSON_Duplicate(use_tools, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(ctx, "documents", use_docs ? cJSON_Duplicate(use_docs, 1) : cJSON_CreateNull());
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", agp);
    for (size_t i = 0; i < nvars; i++) {
        const char *eq = strchr(vars[i], '=');
        if (!eq || eq == vars[i]) {
            rc = cli_usage("template", "--var needs KEY=VALUE, got '%s'", vars[i]);
            goto done;
        }
        char *key = strndup(vars[i], (size_t)(eq - vars[i]));
        if (!key) goto done;
        cJSON *val = cJSON_ParseWithOpts(eq + 1, NULL, 1);
        if (!val) val = cJSON_CreateString(eq + 1);
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, key);
        cJSON_AddItemToObject(ctx, key, val);
        free(key);
    }
    size_t n = 0;
    if (sl_tmpl_render(t, ctx, NULL, &out, &n, &err)) goto fail;
    if (fwrite(out, 1, n, stdout) != n || fflush(stdout) != 0) {
        fprintf(stderr, "silica: error: writing to stdout failed\n");
        goto done;
    }
    rc = 0;
    goto done;
fail:
    rc = cli_fail(&err);
done:
    free(out);
    sl_tmpl_free(t);
    free(src);
    cJSON_Delete(ctx);
    cJSON_Delete(special);
    cJSON_Delete(norm);
    cJSON_Delete(tools);
    cJSON_Delete(docs);
    cJSON_Delete(msgs_doc);
    free(vars);
    return rc;
}
