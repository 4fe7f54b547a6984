/*
 * serve_embed.c — the server of `silica serve` inside your own program:
 * libsilica's sl_serve_run serves one model (OpenAI and Ollama APIs, web
 * chat) until SIGINT or SIGTERM, then lets the requests in flight finish.
 *
 *   serve_embed MODEL_DIR [PORT]      (PORT 0 or absent: any free port)
 *
 * It prints "listening on http://127.0.0.1:PORT" once requests can come.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"

static void on_signal(int sig) {
    (void)sig;
    sl_serve_stop();   /* async-signal-safe: drain, then sl_serve_run returns */
}

static void on_ready(void *ud, const char *host, int port) {
    (void)ud;
    printf("listening on http://%s:%d\n", host, port);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: serve_embed MODEL_DIR [PORT]\n");
        return 2;
    }
    int port = argc > 2 ? atoi(argv[2]) : 0;
    sl_serve_model_spec model = {argv[1], NULL};   /* id: the directory's name */
    sl_serve_opts o;
    memset(&o, 0, sizeof o);
    o.models = &model;
    o.n_models = 1;
    o.port = port > 0 ? port : -1;   /* -1: any free port */
    o.parallel = 2;                  /* two requests decode together */
    o.ready_fn = on_ready;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    sl_error err = {0};
    if (sl_serve_run(&o, &err)) {
        fprintf(stderr, "serve_embed: %s\n", err.msg);
        return 1;
    }
    return 0;
}
