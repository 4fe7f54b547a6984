#!/usr/bin/env bash
# cli_outputs.sh — run a fixed set of silica commands on models/demo and the
# engine test models (tests/fixtures/models/engine_models.tar.xz) and write each
# command's stdout, stderr and exit status into OUTDIR, one file per command.
# Used to show that a refactor changes no output: run it with the binary before
# and after, then `diff -r BEFORE AFTER`.  What depends on the machine or the
# clock (run --json's speeds and peak RSS, dates; `doctor` is not run) becomes a
# placeholder, paths become WORK/ROOT; everything else is deterministic (greedy or
# seeded sampling, one thread).  Output files and directories are recorded as digests.
#
#   tools/cli_outputs.sh SILICA_BIN OUTDIR
set -euo pipefail
bin=$(realpath "$1"); out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out"; mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tar xJf "$root/tests/fixtures/models/engine_models.tar.xz" -C "$work"
demo=$root/models/demo
export SILICA_HOME=$work/store HOME=$work/home
mkdir -p "$HOME"
n=0
# sha PATH: digests of an output file or directory, next to the command that wrote it
sha() { if [ -d "$1" ]; then (cd "$1" && sha256sum * ); elif [ -f "$1" ]; then sha256sum <"$1"; fi >"$out/$(printf '%03d' $n)-zsha"; }
# c NAME ARGS...: run silica with ARGS, record stdout/stderr/rc; paths to $work/$root are rewritten
c() {
    local name=$1; shift; n=$((n + 1))
    local f; f=$out/$(printf '%03d' $n)-$name
    set +e; (cd "$work" && "$bin" "$@" >"$f.out" 2>"$f.err" </dev/null); echo $? >"$f.rc"; set -e
    sed -i -E "s#$work#WORK#g; s#$root#ROOT#g; s/\"(prompt_tps|gen_tps|ttft_ms|peak_rss_bytes)\": ?[0-9.e+-]+/\"\1\":T/g; s/[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:]{8}Z?/DATE/g" "$f.out" "$f.err"
}
c version --version
c help --help
for cmd in inspect scan convert quantize template tokenize detokenize run chat ppl serve bench compare logits list show tag rm gc verify du import pull lfs fit plot doctor; do
    c "help-$cmd" "$cmd" --help
done
c man --man
c compl-bash --completions bash
c inspect-demo inspect "$demo"
c inspect-demo-json inspect --json "$demo"
c tokenize-demo tokenize "$demo" --text "Hello world, héllo 😀"
c tokenize-demo-special tokenize "$demo" --add-special --text "Hello world"
c detok-demo detokenize "$demo" --ids 1,2,3,40,50
c detok-demo-stream detokenize "$demo" --stream --json --ids 1,2,3,40,50,300
printf '[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]' >"$work/msgs.json"
c template-demo template "$demo" --messages "$work/msgs.json" --add-generation-prompt
mkdir -p "$work/tmpl" && cp "$demo"/tokenizer*.json "$work/tmpl/" && cp "$root/tests/data/templates/Qwen-Qwen3-0.6B.jinja" "$work/tmpl/chat_template.jinja" 2>/dev/null || true
c template-qwen3 template tmpl --messages "$work/msgs.json" --add-generation-prompt
c run-demo run "$demo" "Once upon a time" --max-tokens 24 --threads 1
c run-demo-json run --json "$demo" "Once upon a time" --max-tokens 8 --threads 1
c run-demo-seed run "$demo" "The" --max-tokens 16 --temp 0.8 --seed 3 --threads 1
c run-demo-stop run "$demo" "The" --max-tokens 32 --stop "." --threads 1
printf 'Once upon a time there was a small cat. It liked milk.\n' >"$work/text.txt"
c ppl-demo ppl "$demo" --file "$work/text.txt" --json --threads 1
c logits-demo logits "$demo" --ids 1,2,3 --json --threads 1
c fit-demo fit "$demo"
c fit-demo-json fit --json "$demo" --ram 16G
c fit-list fit --list
c fit-catalog fit "$("$bin" fit --list | awk 'NR==1{print $1}')" --profile 16G --json
c fit-all fit "$demo" --all-profiles
c convert-demo-gguf convert "$demo" demo.gguf --to gguf
sha "$work/demo.gguf"
c convert-demo-q8 convert "$demo" demo-q8.gguf --to gguf --q-type Q8_0
sha "$work/demo-q8.gguf"
c convert-demo-mlx convert "$demo" demo-mlx --to mlx -q --q-bits 4 --q-group-size 32
sha "$work/demo-mlx"
c run-demo-mlx run demo-mlx "Once upon a time" --max-tokens 8 --threads 1
c run-demo-gguf run demo-q8.gguf "Once upon a time" --max-tokens 8 --threads 1
c gguf-import convert demo-q8.gguf demo-back --to hf
sha "$work/demo-back"
c inspect-gguf inspect demo-q8.gguf --json
for m in llama llama3 mistral qwen2 qwen3 gemma gemma2 gemma3 phi3 llama-linear; do
    [ -d "$work/$m" ] || continue
    for v in f32-st bf16-bin; do
        [ -d "$work/$m/$v" ] || continue
        c "inspect-$m-$v" inspect "$m/$v"
        c "logits-$m-$v" logits --json "$m/$v" --ids 1,2,3,4 --threads 1
        c "fit-$m-$v" fit --json "$m/$v"
    done
    c "convert-gguf-$m" convert "$m/f32-st" "$m.gguf" --to gguf
    sha "$work/$m.gguf"
    c "logits-gguf-$m" logits --json "$m.gguf" --ids 1,2,3,4 --threads 1
    c "convert-mlx-$m" convert "$m/f32-st" "$m-q4" --to mlx -q --q-bits 4 --q-group-size 32
    sha "$work/$m-q4"
    c "logits-q4-$m" logits --json "$m-q4" --ids 1,2,3,4 --threads 1
    c "convert-torch-$m" convert "$m/f32-st/model.safetensors" "$m.bin" --to torch
    sha "$work/$m.bin"
    c "convert-npz-$m" convert "$m/f32-bin/pytorch_model.bin" "$m.npz" --to npz
    sha "$work/$m.npz"
done
c convert-bad convert /nonexistent x.safetensors --to safetensors
c import-demo import "$demo" test/demo
c list list
c show show test/demo
c du du
c verify verify
c run-store run test/demo "Once" --max-tokens 8 --threads 1
c rm rm test/demo
c gc gc
echo "$n commands -> $out"
