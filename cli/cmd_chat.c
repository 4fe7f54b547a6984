/*
 * cmd_chat.c — `silica chat [MODEL]`: an interactive conversation.
 * Each turn re-renders the whole conversation with the chat template
 * (add_generation_prompt) and encodes it; the KV cache keeps the previous
 * prompt + answer and only the part after the common prefix is evaluated
 * (gen.c).  Commands: /reset, /system TEXT, /stats, /quit (also EOF); multi-line
 * input with a trailing backslash or a """ ... """ block.
 * Ctrl-C during an answer stops that answer (our own SIGINT handler sets a
 * flag the generation loop polls; it replaces io.c's cleanup handler, which
 * chat does not need: it writes no files); Ctrl-C at the prompt discards the
 * line.  Without a chat template (a base model, e.g. the demo) the
 * conversation is a plain transcript — "User: …" and "Assistant: …" lines, a
 * system message first as "System: …", the prompt ending in "Assistant:" —
 * the dialogue format of llama.cpp's interactive mode (prompts/chat-with-bob.txt
 * with reverse prompt "User:"), not ChatML (llama.cpp's fallback in its
 * server), whose special tokens a model without a template does not have;
 * stderr says so once, and an answer stops before the model writes the next
 * "
User:" itself.  When stdout is not a terminal, each turn is marked
 * ("User: <message>", then "Assistant: <answer>") so a log of the session
 * reads as a transcript.
 * Memory (memguard.c): the guard runs before the model is opened (the
 * context is known: --ctx, default 4096); on a TTY a status line (RSS, peak,
 * KV used/allocated, tok/s of the last answer) follows each answer, and
 * /stats prints it always; --monitor records phases load, prompt, generate,
 * idle (waiting for the user) and done.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "gen.h"
#include "memguard.h"
#include "silica/registry.h"


static const char *k_help =
    "usage: silica chat [MODEL] [--system TEXT] [--max-tokens N] [--ctx N] [sampling options of run]\n"
    "                   [--max-memory SIZE] [--force] [--mlock] [--monitor FILE [--monitor-interval MS]]\n\n"
    "Talk with a model.  Commands: /reset (forget the conversation), /system TEXT (set the system\n"
    "message and reset), /stats (memory and speed: RSS, peak RSS, KV cache used/allocated, tok/s\n"
    "of the last answer; on a terminal this line also follows every answer), /quit (or end of input).  End a line with \\ to continue it, or enclose\n"
    "several lines in \"\"\" ... \"\"\".  Ctrl-C stops the current answer.  MODEL defaults to the demo\n"
    "model (see `silica run --help`), which samples with\n  " GEN_DEMO_SAMPLING_HELP "\n"
    "unless told otherwise; a named model decodes greedily.  A model without a chat template gets a\n"
    "plain transcript (\"User: ...\" / \"Assistant: ...\" lines; an answer stops at the next \"User:\").\n"
    "When stdout is not a terminal, each turn is marked \"User: <message>\" / \"Assistant: <answer>\".\n\n"
    "options:\n"
    "  --system TEXT    system message\n"
    "  --max-tokens N   tokens per answer at most (default 1024)\n"
    "  --ctx N          context size in tokens (default 4096)\n"
    "  --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R, --repeat-last-n N, --seed S   as in run\n"
    "  --kv TYPE, --kv-bits B, --kv-group-size G, --max-kv-size N, --threads N, --device D   as in run\n"
    GEN_TOKENIZER_HELP
    CLI_MEM_HELP
    "  --help           this text\n";

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static bool chat_cancelled(void) { return g_stop != 0; }

static void emit_stdout(const char *s, size_t n, void *ud) {
    (void)ud;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

/* Read one line (without its newline) into *buf; false at EOF.  A Ctrl-C
 * while waiting gives an empty line. */
static bool read_line(char **buf, size_t *cap) {
    for (;;) {
        errno = 0;
        ssize_t k = getline(buf, cap, stdin);
        if (k >= 0) {
            while (k > 0 && ((*buf)[k - 1] == '\n' || (*buf)[k - 1] == '\r')) (*buf)[--k] = 0;
            return true;
        }
        if (errno == EINTR && g_stop) {
            clearerr(stdin);
            g_stop = 0;
            fputc('\n', stdout);
            (*buf)[0] = 0;
            return true;
        }
        return false;
    }
}

static int append(char **s, size_t *n, const char *t, bool nl) {
    size_t k = strlen(t);
    char *p = realloc(*s, *n + k + 2);
    if (!p) return -1;
    memcpy(p + *n, t, k);
    *n += k;
    if (nl) p[(*n)++] = '\n';
    p[*n] = 0;
    *s = p;
    return 0;
}

/* One user message (handles \ continuation and """ blocks); NULL at EOF. */
static char *read_message(bool tty) {
    char *line = NULL, *msg = NULL;
    size_t cap = 0, n = 0;
    if (tty) fputs(">>> ", stdout), fflush(stdout);
    if (!read_line(&line, &cap)) { free(line); return NULL; }
    if (strncmp(line, "\"\"\"", 3) == 0) {
        const char *rest = line + 3;
        bool first = true;
        for (;;) {
            char *end = strstr(rest, "\"\"\"");
            if (end) {
                *end = 0;
                if (append(&msg, &n, rest, false)) break;
                break;
            }
            if ((!first || *rest) && append(&msg, &n, rest, true)) break;
            first = false;
            if (tty) fputs("... ", stdout), fflush(stdout);
            if (!read_line(&line, &cap)) break;
            rest = line;
        }
    } else {
        for (;;) {
            size_t k = strlen(line);
            bool more = k > 0 && line[k - 1] == '\\';
            if (more) line[k - 1] = 0;
            if (append(&msg, &n, line, more)) break;
            if (!more) break;
            if (tty) fputs("... ", stdout), fflush(stdout);
            if (!read_line(&line, &cap)) break;
        }
    }
    free(line);
    if (!msg) msg = calloc(1, 1);
    return msg;
}

static void add_msg(cJSON *msgs, const char *role, const char *content, size_t len) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    char *c = strndup(content, len);
    cJSON_AddStringToObject(m, "content", c ? c : "");
    free(c);
    cJSON_AddItemToArray(msgs, m);
}

/* Turn markers of the plain transcript (no chat template). */
#define CHAT_PLAIN_STOP "\nUser:"

/* The conversation as a plain transcript when the model has no chat
 * template: "System: s\nUser: u\nAssistant: a\nUser: u2\nAssistant:". */
static char *plain_text(const cJSON *msgs) {
    char *s = calloc(1, 1);
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) continue;
        const char *who = !strcmp(r->valuestring, "system") ? "System: "
                          : !strcmp(r->valuestring, "assistant") ? "Assistant: " : "User: ";
        const char *t = c->valuestring;
        while (*t == ' ') t++;   /* answers keep the space the model wrote after "Assistant:" */
        if (!s || append(&s, &n, who, false) || append(&s, &n, t, true)) {
            free(s);
            return NULL;
        }
    }
    if (s && append(&s, &n, "Assistant:", false)) {
        free(s);
        return NULL;
    }
    return s;
}

/* Streams an answer to stdout; with skip_lead, leading blanks (the space
 * after "Assistant:" in a plain transcript) are not shown. */
typedef struct chat_out {
    bool skip_lead;
} chat_out;

static void emit_answer(const char *s, size_t n, void *ud) {
    chat_out *o = ud;
    while (o->skip_lead && n && (*s == ' ' || *s == '\n')) s++, n--;
    if (n) o->skip_lead = false;
    emit_stdout(s, n, NULL);
}

int cmd_chat(int argc, char **argv) {
    const char *path = NULL, *system = NULL, *tokenizer = NULL;
    long max_tokens = 1024;
    sl_session_opts so = {0};
    cli_mem_opts mo = {0};
    sl_sampler_params sp;
    gen_sampling_unset(&sp);   /* defaults after parsing: the demo model samples (gen.h) */
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        int rc = cli_generation_opt(argc, argv, &i, "chat", &so, &mo, &sp, 1, &max_tokens, &matched);
        if (rc) return rc;
        if (matched) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--system", &missing))) system = v;
        else if (missing) return cli_usage("chat", "--system needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--tokenizer", &missing))) tokenizer = v;
        else if (missing) return cli_usage("chat", "--tokenizer needs a value");
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("chat", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("chat", "unexpected argument '%s'", argv[i]);
    }
    gen_sampling_finish(&sp, !path);
    if (!path && !(path = gen_default_model()))
        return cli_usage("chat", "no MODEL given and no demo model found (set SILICA_DEFAULT_MODEL)");
    if (cli_resolve_store(&path, NULL)) return 2;
    if (so.n_ctx <= 0) so.n_ctx = 4096;
    /* the memory guard: before the model is opened */
    if (cli_mem_guard(path, &so, &mo)) return 2;
    cli_mem_run mr;
    if (cli_mem_begin(&mr, &mo)) return 2;
    sl_error err = {0};
    gen_model g = {0};
    gen_cache cache = {0};
    sl_session *s = NULL;
    sl_sampler *smp = NULL;
    cJSON *msgs = cJSON_CreateArray();
    char *sys_owned = system ? strdup(system) : NULL;
    int rc = 0;
    double last_tps = 0;
    if (gen_open_tok(path, tokenizer, &g, &err)) goto fail;
    if (!g.tok) {
        sl_errorf(&err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): chat needs text; name one with --tokenizer", path);
        goto fail;
    }
    if (!g.tmpl)
        fprintf(stderr, "silica: %s has no chat template: the conversation is a plain transcript (\"User: ...\" and "
                        "\"Assistant: ...\" lines); an answer stops at the next \"User:\"\n", path);
    if (sl_session_new(g.m, &so, &s, &err) || sl_sampler_new(&sp, g.c->vocab_size, &smp, &err)) goto fail;
    cli_device_note(s);
    if ((rc = cli_mem_loaded(&mr, &g, s, &so, &mo))) goto out;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a Ctrl-C at the prompt interrupts getline */
    sigaction(SIGINT, &sa, NULL);
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    bool mark = !isatty(STDOUT_FILENO);   /* a log of the session: mark whose turn each text is */
    if (tty) fprintf(stdout, "silica chat: %s (/reset, /system TEXT, /stats, /quit; Ctrl-C stops an answer)\n", path);
    for (;;) {
        cli_mem_phase(&mr, "idle");
        char *in = read_message(tty);
        if (!in) break;
        if (strcmp(in, "/quit") == 0 || strcmp(in, "/exit") == 0) { free(in); break; }
        if (strcmp(in, "/stats") == 0) {
            cli_mem_status(&mr, last_tps, stdout);
            free(in);
            continue;
        }
        if (strcmp(in, "/reset") == 0 || strncmp(in, "/system", 7) == 0) {
            if (in[1] == 's') {
                const char *t = in + 7;
                while (*t == ' ') t++;
                free(sys_owned);
                sys_owned = *t ? strdup(t) : NULL;
            }
            cJSON_Delete(msgs);
            msgs = cJSON_CreateArray();
            printf("[conversation reset]\n");
            fflush(stdout);
            free(in);
            continue;
        }
        if (!*in) { free(in); continue; }
        cJSON *turn = cJSON_CreateArray();
        if (sys_owned) add_msg(turn, "system", sys_owned, strlen(sys_owned));
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs) cJSON_AddItemToArray(turn, cJSON_Duplicate(m, 1));
        add_msg(turn, "user", in, strlen(in));
        int32_t *ids = NULL;
        int n = 0;
        char *plain = g.tmpl ? NULL : plain_text(turn);
        int prc = gen_prompt(&g, turn, plain ? plain : in, true, &ids, &n, &err);
        free(plain);
        cJSON_Delete(turn);
        if (prc) { free(in); goto fail; }
        if (n > so.n_ctx) {
            fprintf(stderr, "silica: the conversation (%d tokens) no longer fits the context of %d: /reset or raise --ctx\n",
                    n, so.n_ctx);
            free(ids);
            free(in);
            continue;
        }
        g_stop = 0;
        gen_result r = {0};
        static const char *const plain_stops[] = {CHAT_PLAIN_STOP};
        chat_out co = {.skip_lead = !g.tmpl};
        if (mark) {
            int k = (int)strlen(in);
            while (k > 0 && in[k - 1] == '\n') k--;
            printf("User: %.*s\nAssistant: ", k, in);
        }
        gen_opts o = {.max_tokens = (int)max_tokens, .emit = emit_answer, .ud = &co, .cancelled = chat_cancelled,
                      .progress = cli_mem_progress, .progress_ud = &mr, .stops = g.tmpl ? NULL : plain_stops,
                      .n_stops = g.tmpl ? 0 : 1};
        int grc = gen_generate(&g, s, &cache, smp, ids, n, &o, &r, &err);
        free(ids);
        if (grc) { free(in); gen_result_free(&r); goto fail; }
        printf("\n");
        if (g_stop) printf("[stopped]\n");
        last_tps = r.n > 1 && r.gen_s > 0 ? (r.n - 1) / r.gen_s : 0;
        if (tty) cli_mem_status(&mr, last_tps, stdout);
        fflush(stdout);
        g_stop = 0;
        add_msg(msgs, "user", in, strlen(in));
        add_msg(msgs, "assistant", r.text ? r.text : "", r.len);
        gen_result_free(&r);
        free(in);
    }
    goto out;
fail:
    rc = cli_fail(&err);
out:
    if (mr.mon) {
        int mrc = cli_mem_end(&mr, rc == 0);
        if (!rc) rc = mrc;
    }
    free(sys_owned);
    cJSON_Delete(msgs);
    gen_cache_free(&cache);
    sl_sampler_free(smp);
    sl_session_free(s);
    gen_close(&g);
    return rc;
}
