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
 * "\nUser:" itself.  When stdout is not a terminal, each turn is marked
 * ("User: <message>", then "Assistant: <answer>") so a log of the session
 * reads as a transcript.
 * Inputs (inputs.c): a MODEL that does not exist is an error; messages are
 * UTF-8 without NUL; --ctx is checked against the model's length.
 * Memory (memguard.c): the guard runs once the model is opened (mmap only:
 * no weight page read) and the context known (--ctx, default 4096); on a TTY a status line (RSS, peak,
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
#include "inputs.h"
#include "memguard.h"
#include "silica/registry.h"


static const char *k_help =
    "usage: silica chat [MODEL] [--system TEXT] [-f FILE] [--max-tokens N] [--ctx N] [sampling options of run]\n"
    "                   [--max-memory SIZE] [--force] [--mlock] [--monitor FILE [--monitor-interval MS]]\n\n"
    "Talk with a model.  Commands: /reset (forget the conversation), /system TEXT (set the system\n"
    "message and reset), /stats (memory and speed: RSS, peak RSS, KV cache used/allocated, tok/s\n"
    "of the last answer; on a terminal this line also follows every answer), /quit (or end of input).  End a line with \\ to continue it, or enclose\n"
    "several lines in \"\"\" ... \"\"\".  Ctrl-C stops the current answer.  MODEL defaults to the demo\n"
    "model (see `silica run --help`), which samples with\n  " GEN_DEMO_SAMPLING_HELP "\n"
    "unless told otherwise; a named model decodes greedily.  A model without a chat template gets a\n"
    "plain transcript (\"User: ...\" / \"Assistant: ...\" lines; an answer stops at the next \"User:\").\n"
    "When stdout is not a terminal, each turn is marked \"User: <message>\" / \"Assistant: <answer>\".\n"
    "A MODEL that does not exist is an error.  Messages must be UTF-8 without NUL bytes: from a pipe\n"
    "a bad one ends chat (exit 2), on a terminal it is not sent.\n\n"
    "options:\n"
    "  --system TEXT    system message\n"
    "  --max-tokens N   tokens per answer at most (default 1024)\n"
    "  -f, --prompt-file F   the first message, from file F; then the conversation goes on from stdin\n"
    "  --ctx N          context size in tokens (default 4096, at most the model's max_position_embeddings;\n"
    "                   past that: refused without --force unless RoPE scaling covers it, as in run)\n"
    "  --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R, --repeat-last-n N, --seed S   as in run\n"
    "  --kv TYPE, --kv-bits B, --kv-group-size G, --max-kv-size N, --threads N, --device D,\n"
    "  --gpu-layers N   as in run\n"
    GEN_TOKENIZER_HELP
    CLI_MEM_HELP
    "  --help           this text\n";

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}


/* Read one line (without its newline) into *buf, its length (NUL bytes
 * included) into *len; false at EOF.  A Ctrl-C while waiting gives an empty
 * line. */
static bool read_line(char **buf, size_t *cap, size_t *len) {
    for (;;) {
        errno = 0;
        ssize_t k = getline(buf, cap, stdin);
        if (k >= 0) {
            while (k > 0 && ((*buf)[k - 1] == '\n' || (*buf)[k - 1] == '\r')) (*buf)[--k] = 0;
            *len = (size_t)k;
            return true;
        }
        if (errno == EINTR && g_stop) {
            clearerr(stdin);
            g_stop = 0;
            fputc('\n', stdout);
            (*buf)[0] = 0;
            *len = 0;
            return true;
        }
        return false;
    }
}

/* Append t[0..k) (NUL bytes kept, so the message check sees them). */
static int append(char **s, size_t *n, const char *t, size_t k, bool nl) {
    char *p = realloc(*s, *n + k + 2);
    if (!p) return -1;
    memcpy(p + *n, t, k);
    *n += k;
    if (nl) p[(*n)++] = '\n';
    p[*n] = 0;
    *s = p;
    return 0;
}

/* One user message (handles \ continuation and """ blocks), *len bytes
 * (NUL bytes kept); NULL at EOF. */
static char *read_message(bool tty, size_t *len) {
    char *line = NULL, *msg = NULL;
    size_t cap = 0, n = 0, k = 0;
    if (tty) fputs(">>> ", stdout), fflush(stdout);
    if (!read_line(&line, &cap, &k)) { free(line); return NULL; }
    if (strncmp(line, "\"\"\"", 3) == 0) {
        const char *rest = line + 3;
        size_t rk = k - 3;
        bool first = true;
        for (;;) {
            char *end = strstr(rest, "\"\"\"");
            if (end) {
                append(&msg, &n, rest, (size_t)(end - rest), false);
                break;
            }
            if ((!first || rk) && append(&msg, &n, rest, rk, true)) break;
            first = false;
            if (tty) fputs("... ", stdout), fflush(stdout);
            if (!read_line(&line, &cap, &k)) break;
            rest = line;
            rk = k;
        }
    } else {
        for (;;) {
            bool more = k > 0 && line[k - 1] == '\\';
            if (more) line[--k] = 0;
            if (append(&msg, &n, line, k, more)) break;
            if (!more) break;
            if (tty) fputs("... ", stdout), fflush(stdout);
            if (!read_line(&line, &cap, &k)) break;
        }
    }
    free(line);
    if (!msg) msg = calloc(1, 1), n = 0;
    *len = n;
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

/* Streams an answer to stdout; with skip_lead, leading blanks (the space
 * after "Assistant:" in a plain transcript) are not shown.  A Ctrl-C stops
 * the answer (sl_gen_token_fn). */
typedef struct chat_out {
    bool skip_lead;
} chat_out;

static int emit_answer(void *ud, const sl_gen_token *t) {
    chat_out *o = ud;
    const char *s = t->text;
    size_t n = t->len;
    while (o->skip_lead && n && (*s == ' ' || *s == '\n')) s++, n--;
    if (n) o->skip_lead = false;
    if (n) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
    }
    return g_stop != 0;
}

/* The next user message: the --prompt-file text first (checked already),
 * then stdin.  A message that is not UTF-8 without NUL is refused (exit 2,
 * *refused) from a pipe, and skipped with the error line on a terminal.
 * NULL at EOF. */
static char *next_message(bool tty, char **first, int *count, bool *refused) {
    *refused = false;
    if (*first) {
        char *in = *first;
        *first = NULL;
        return in;
    }
    for (;;) {
        size_t len = 0;
        char *in = read_message(tty, &len);
        if (!in) return NULL;
        char what[64];
        snprintf(what, sizeof what, "stdin, message %d", ++*count);
        if (!cli_check_text(what, in, len, tty ? " (not sent)" : NULL)) return in;
        free(in);
        if (!tty) {
            *refused = true;
            return NULL;
        }
    }
}

int cmd_chat(int argc, char **argv) {
    const char *path = NULL, *system = NULL, *prompt_file = NULL;
    sl_gen_model_opts gmo = {0};
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
        else if ((v = cli_opt_value(argc, argv, &i, "--tokenizer", &missing))) gmo.tokenizer = v;
        else if (missing) return cli_usage("chat", "--tokenizer needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--prompt-file", &missing)) ||
                 (!missing && (v = cli_opt_value(argc, argv, &i, "-f", &missing)))) {
            if (!*v || !strcmp(v, "-")) return cli_usage("chat", "--prompt-file needs a file (stdin is the conversation)");
            prompt_file = v;
        } else if (missing) return cli_usage("chat", "%s needs a file name", argv[i]);
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("chat", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("chat", "unexpected argument '%s'", argv[i]);
    }
    gen_sampling_finish(&sp, !path);
    if (system && cli_check_text("--system", system, strlen(system), NULL)) return 2;
    if (path ? cli_check_model(path) : !(path = cli_demo_model("chat"))) return 2;
    if (cli_resolve_store(&path, NULL)) return 2;
    char *first = NULL;   /* the --prompt-file message */
    size_t flen = 0;
    if (prompt_file && (cli_read_text(prompt_file, &first, &flen) || cli_check_text(prompt_file, first, flen, NULL))) {
        free(first);
        return 2;
    }
    cli_mem_run mr;
    if (cli_mem_begin(&mr, &mo)) {
        free(first);
        return 2;
    }
    sl_error err = {0};
    sl_gen_model *g = NULL;
    sl_gen_seq *q = NULL;
    cJSON *msgs = cJSON_CreateArray();
    char *sys_owned = system ? strdup(system) : NULL;
    int rc = 0, count = 0;
    double last_tps = 0;
    if (sl_gen_model_open(path, &gmo, &g, &err)) goto fail;
    bool tmpl = sl_gen_model_has_template(g);
    if (!sl_gen_model_tokenizer(g)) {
        sl_errorf(&err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): chat needs text; name one with --tokenizer", path);
        goto fail;
    }
    /* the context, then the memory guard: before the KV cache exists or a weight page is read */
    if ((rc = cli_ctx_or_default(path, sl_gen_model_config(g), mo.force, 4096, &so)) ||
        (rc = cli_mem_guard(path, &so, &mo)))
        goto out;
    if (!tmpl)
        fprintf(stderr, "silica: %s has no chat template: the conversation is a plain transcript (\"User: ...\" and "
                        "\"Assistant: ...\" lines); an answer stops at the next \"User:\"\n", path);
    if (sl_gen_seq_new(g, &so, &q, &err)) goto fail;
    cli_device_note(sl_gen_seq_session(q));
    if ((rc = cli_mem_loaded(&mr, sl_gen_model_get(g), sl_gen_seq_session(q), &so, &mo))) goto out;
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
        bool refused;
        char *in = next_message(tty, &first, &count, &refused);
        if (refused) { rc = 2; goto out; }
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
        sl_gen_prompt_opts po = {.messages = turn};   /* the template, or the plain transcript */
        int prc = sl_gen_prompt(g, &po, &ids, &n, &err);
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
        static const char *const plain_stops[] = {SL_GEN_PLAIN_STOP};
        chat_out co = {.skip_lead = !tmpl};
        if (mark) {
            int k = (int)strlen(in);
            while (k > 0 && in[k - 1] == '\n') k--;
            printf("User: %.*s\nAssistant: ", k, in);
        }
        /* one sampler for the whole conversation: its random stream goes on from turn to turn */
        sl_gen_params gp = {.sampling = sp, .max_tokens = (int)max_tokens, .continue_rng = true,
                            .progress = cli_mem_progress, .progress_ud = &mr, .stops = tmpl ? NULL : plain_stops,
                            .n_stops = tmpl ? 0 : 1};
        int grc = sl_generate(q, ids, n, &gp, emit_answer, &co, &err);
        free(ids);
        if (grc) { free(in); goto fail; }
        printf("\n");
        if (g_stop) printf("[stopped]\n");
        const sl_gen_stats *st = sl_gen_seq_stats(q);
        int ng;
        size_t alen;
        sl_gen_generated(q, &ng);
        const char *answer = sl_gen_text(q, &alen);
        last_tps = ng > 1 && st->gen_s > 0 ? (ng - 1) / st->gen_s : 0;
        if (tty) cli_mem_status(&mr, last_tps, stdout);
        fflush(stdout);
        g_stop = 0;
        add_msg(msgs, "user", in, strlen(in));
        add_msg(msgs, "assistant", answer ? answer : "", answer ? alen : 0);
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
    free(first);
    free(sys_owned);
    cJSON_Delete(msgs);
    sl_gen_seq_free(q);
    sl_gen_model_close(g);
    return rc;
}
