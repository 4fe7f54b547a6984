#!/bin/sh
# popular.sh — one-line pulls of popular models into the silica store.
#   part7/scripts/popular.sh                         list the names and their repo ids
#   part7/scripts/popular.sh --dry-run NAME...       show the files and sizes a pull would fetch
#                                                    (asks the hub, downloads nothing)
#   part7/scripts/popular.sh NAME... [PULL OPTIONS]  pull them (silica on PATH or $SILICA)
# Options (--dry-run, --hf-cache, --jobs N, --json ...) go to every `silica pull`.
# The names are the memory guide's (part6, `silica fit --list`), whose catalog also
# gives each original's repo id; NAME-mlx4 is the mlx-community MLX 4-bit build.
# Originals come in transformers layout (safetensors shards + config + tokenizer;
# original/ and Mistral's duplicate consolidated.safetensors are left out by the
# default selection).  meta-llama, mistralai and google repos are gated: accept the
# license on huggingface.co and export HF_TOKEN.  Check first: `silica fit NAME`.
# POSIX sh (macOS /bin/sh and bash 3.2 included); how each id was checked:
# part7/README.md ("Popular models").
set -eu
S=${SILICA:-silica}

# the MLX 4-bit builds (mlx-community), keyed by the guide's name
mlx4() {
    case "$1" in
    llama-3.2-1b) echo mlx-community/Llama-3.2-1B-Instruct-4bit ;;
    llama-3.2-3b) echo mlx-community/Llama-3.2-3B-Instruct-4bit ;;
    qwen2.5-7b) echo mlx-community/Qwen2.5-7B-Instruct-4bit ;;
    qwen3-4b) echo mlx-community/Qwen3-4B-4bit ;;
    qwen3-8b) echo mlx-community/Qwen3-8B-4bit ;;
    mistral-7b) echo mlx-community/Mistral-7B-Instruct-v0.3-4bit ;;
    gemma-2-2b) echo mlx-community/gemma-2-2b-it-4bit ;;
    gemma-3-1b) echo mlx-community/gemma-3-1b-it-4bit ;;
    gemma-3-4b) echo mlx-community/gemma-3-4b-it-4bit ;;
    phi-3.5-mini) echo mlx-community/Phi-3.5-mini-instruct-4bit ;;
    *) return 1 ;;
    esac
}

# NAME -> repo id, or nothing for an unknown name
repo_of() {
    case "$1" in
    *-mlx4) mlx4 "${1%-mlx4}" || true ;;
    *) "$S" fit "$1" --json 2>/dev/null | sed -n 's/^{"model":"[^"]*","repo":"\([^"]*\)".*/\1/p' ;;
    esac
}

names=
opts=
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --jobs | --endpoint | --include | --exclude)
        [ $# -ge 2 ] || { echo "popular.sh: $1 needs a value" >&2; exit 2; }
        opts="$opts $1 $2"; shift ;;
    -*) opts="$opts $1" ;;
    *) names="$names $1" ;;
    esac
    shift
done
if [ -z "$names" ]; then
    for k in $("$S" fit --list); do
        printf '%-20s %s pull %s\n' "$k" "$S" "$(repo_of "$k")"
        if r=$(mlx4 "$k"); then printf '%-20s %s pull %s\n' "$k-mlx4" "$S" "$r"; fi
    done
    exit 0
fi
for k in $names; do
    [ -n "$(repo_of "$k")" ] || { echo "popular.sh: unknown model '$k' (run without arguments for the list)" >&2; exit 2; }
done
for k in $names; do
    # shellcheck disable=SC2086  # $opts: the pull options, split as given (none contain spaces)
    "$S" pull "$(repo_of "$k")" $opts
done
