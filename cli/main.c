/*
 * main.c — `silica`: git-style subcommands.  Each command lives in its own
 * cmd_*.c file and answers `--help`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "docgen.h"

static const cli_command k_commands[] = {
    {"doctor", cmd_doctor, "describe this machine: OS, CPU and SIMD features, memory, build"},
    {"inspect", cmd_inspect, "list the tensors, dtypes, shapes and metadata of a checkpoint"},
    {"scan", cmd_scan, "list a PyTorch file's pickle imports and whether silica will load them"},
    {"convert", cmd_convert, "convert tensors between safetensors, PyTorch, NumPy and GGUF"},
    {"quantize", cmd_quantize, "quantize a model like mlx_lm.convert -q (MLX) or llama.cpp (GGUF)"},
    {"template", cmd_template, "render a conversation with a model's chat template (like transformers)"},
    {"tokenize", cmd_tokenize, "text -> token ids, identical to Hugging Face tokenizers"},
    {"detokenize", cmd_detokenize, "token ids -> text (also streaming), identical to Hugging Face"},
    {"run", cmd_run, "generate text with a model on the CPU (prompt, chat template, streaming)"},
    {"chat", cmd_chat, "talk with a model: a REPL keeping the conversation"},
    {"ppl", cmd_ppl, "perplexity of a model on a text file"},
    {"serve", cmd_serve, "serve models over HTTP: OpenAI and Ollama APIs, web chat, continuous batching"},
    {"bench", cmd_bench, "prompt and generation speed in tokens per second (like llama-bench)"},
    {"compare", cmd_compare, "one model through silica, MLX, PyTorch and llama.cpp: KL divergence, speed, memory"},
    {"logits", cmd_logits, "a model's logits for every position of a token-id prompt"},
    {"list", cmd_list, "list the model versions in the store (and the Hugging Face cache)"},
    {"show", cmd_show, "a stored version's files, digests, config summary and lineage"},
    {"tag", cmd_tag, "give a stored version another name or tag"},
    {"rm", cmd_rm, "remove a version from the store (blobs only when unused)"},
    {"gc", cmd_gc, "delete unreferenced blobs and temporaries from the store"},
    {"verify", cmd_verify, "rehash the store's blobs; quarantine corrupt ones"},
    {"du", cmd_du, "disk use of the store"},
    {"import", cmd_import, "add a local model directory to the store"},
    {"pull", cmd_pull, "download a model from a Hugging Face protocol hub into the store"},
    {"lfs", cmd_lfs, "Git LFS: pointers, fetch from and push to LFS remotes"},
    {"fit", cmd_fit, "will a model fit this machine / an 8-128 GB Mac, and what would make it fit"},
    {"plot", cmd_plot, "turn a --monitor memory time series into an SVG plot"},
};
#define N_COMMANDS (sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: silica <command> [options]\n\n"
               "silica runs, converts and inspects LLM checkpoints (MLX, PyTorch, safetensors, GGUF).\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(f, "  %-10s %s\n", "help", "show this list, or `silica help <command>`");
    fprintf(f, "\noptions:\n"
               "  --version                    print the version\n"
               "  --help                       show this help\n"
               "  --completions bash|zsh|fish  print a shell completion script\n"
               "  --man [COMMAND]              print the manual page of silica or of COMMAND (roff)\n"
               "\nRun `silica <command> --help` for a command's options.\n");
}

static const cli_command *find(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(k_commands[i].name, name) == 0) return &k_commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    sl_install_cleanup_handlers();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (cli_is_help(cmd)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("silica %s\n", sl_version());
        return 0;
    }
    /* completions and man pages, generated from the --help texts (docgen.c);
     * --gen-docs DIR is the build's: all of them under DIR (share/ layout) */
    if (strcmp(cmd, "--completions") == 0 || strcmp(cmd, "--man") == 0 || strcmp(cmd, "--gen-docs") == 0)
        return cli_docgen_main(argc - 1, argv + 1, k_commands, N_COMMANDS, usage);
    if (strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const cli_command *c = find(argv[2]);
        if (!c) return cli_usage("help", "unknown command '%s'", argv[2]);
        char *hargv[] = {(char *)c->name, "--help", NULL};
        return c->run(2, hargv);
    }
    const cli_command *c = find(cmd);
    if (!c) {
        fprintf(stderr, "silica: unknown command '%s' (see `silica help`)\n", cmd);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
