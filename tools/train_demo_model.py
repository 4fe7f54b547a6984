#!/usr/bin/env python3
"""train_demo_model.py — makes silica's embedded demo model from scratch.

The demo model is a small Llama-architecture causal LM with its own
byte-level BPE tokenizer, trained on the Python standard library's source
(PSF licence, redistributable).  silica ships its MLX 4-bit conversion under
models/demo/ (made by `silica convert ... --to mlx -q --q-bits 4`).

Run on a machine with a GPU, torch, transformers and tokenizers (no network):
    python3 tools/train_demo_model.py OUTDIR [--time-budget 330] [--epochs 3,6,12]
    python3 tools/train_demo_model.py OUTDIR --smoke     # tiny CPU check, ~20 s
    python3 tools/train_demo_model.py TEXT --mlx-ppl MODEL_DIR   # mlx_lm's perplexity
The shipped model was made from CPython 3.11.7's standard library WITH its
test suite (30 MB of .py; the GPU machine's own /usr/lib/python3.12 has no
test/ and gave only 2.8 M tokens, on which the model overfits badly):
    cd "$(python3.11 -c 'import sysconfig,os;print(os.path.dirname(sysconfig.get_paths()["stdlib"]))')"
    find python3.11 -name '*.py' -not -path '*/site-packages/*' | LC_ALL=C sort |
        tar -cf - -T - | xz > stdlib-3.11.7.tar.xz        # 4.8 MB, carried to the GPU machine
    tar -C /tmp/sl -xJf stdlib-3.11.7.tar.xz
    python3 tools/train_demo_model.py /tmp/dm --stdlib /tmp/sl/python3.11   # 324 s on one H100
It writes
    OUTDIR/demo-hf/     config.json, generation_config.json, model.safetensors
                        (bf16), tokenizer.json, tokenizer_config.json, the
                        held-out files (heldout/*.py) and results.json
    OUTDIR/results.json perplexity, loss curve, parameters, timings

Invariants (the rest of the project relies on them):
  * Training text = every *.py file under the stdlib directory
    (sysconfig 'stdlib'), in sorted path order, that decodes as UTF-8, is not
    under site-packages/dist-packages, and is not one of HELDOUT (top-level
    modules, chosen by name, ~100 KB) or a validation file (every 50th of the
    rest in sorted order, 36 files: picks the checkpoint, never trained on).
  * Training: one run per --epochs entry (cosine over that many epochs, time
    cap shared in proportion); the weights with the lowest validation nll,
    over all runs and evaluation points, are the ones saved.
  * Held-out text = the HELDOUT files in sorted name order, each terminated by
    "\\n" (all of them already are, so it equals `cat data/heldout/*.py`).
  * Tokenizer: BPE over bytes (GPT-2 ByteLevel pre-tokenizer and decoder),
    special tokens <|bos|>=0, <|eos|>=1, <|pad|>=2; the post-processor adds
    <|bos|> when special tokens are requested.  No chat template: the model is
    a code completer, so `silica run PROMPT` feeds the prompt as is.
  * Training sequences: each file is [BOS] + encode(text) + [EOS]; all are
    concatenated and random windows of CTX+1 tokens are drawn.
  * Perplexity (`silica ppl`'s definition, part5/README.md): ids = [BOS] +
    encode(text, no special tokens); for s = 0, N, 2N, ... while s < len-1:
    T = min(N, len-1-s), inputs ids[s:s+T], targets ids[s+1:s+1+T]; each window
    scored on its own (no cache carried over); nll = mean over all targets,
    ppl = exp(nll), tokens = number of targets; N = 512.  Computed in float32
    (TF32 off, eager attention) on the weights AS SAVED (bf16 values), so
    silica's figure on the shipped HF checkpoint must match it; the figure
    for the f32 master weights is reported too.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import sysconfig
import time

HELDOUT = ["bisect.py", "colorsys.py", "fractions.py", "heapq.py", "shlex.py", "textwrap.py"]
SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>"]
BOS, EOS, PAD = 0, 1, 2
PPL_WINDOW = 512
VAL_EVERY = 50
VAL_MAX_IDS = 65537
PROMPT = "def fibonacci(n):"


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def collect_sources(stdlib):
    """(training texts, validation texts, held-out {name: text}) by the fixed
    rule in the module comment: held-out = HELDOUT by name; validation = every
    VAL_EVERY-th remaining file in sorted path order (used to pick the
    checkpoint, never trained on); training = the rest."""
    train, val, held = [], [], {}
    paths = []
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
        for f in files:
            if f.endswith(".py"):
                paths.append(os.path.join(root, f))
    paths.sort()
    skipped = 0
    for p in paths:
        rel = os.path.relpath(p, stdlib)
        try:
            with open(p, "rb") as fh:
                text = fh.read().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            skipped += 1
            continue
        if rel in HELDOUT:
            held[rel] = text
        elif (len(train) + len(val)) % VAL_EVERY == VAL_EVERY // 2:
            val.append(text)
        else:
            train.append(text)
    missing = [h for h in HELDOUT if h not in held]
    if missing:
        raise SystemExit(f"held-out modules not found in {stdlib}: {missing}")
    log(f"sources: {len(train)} training files ({sum(map(len, train)) / 1e6:.1f} MB), "
        f"{len(val)} validation ({sum(map(len, val)) / 1e6:.2f} MB), "
        f"{len(held)} held-out ({sum(map(len, held.values())) / 1e3:.1f} KB), {skipped} skipped (not UTF-8)")
    return train, val, held


def heldout_text(held):
    return "".join(held[k] if held[k].endswith("\n") else held[k] + "\n" for k in sorted(held))


def train_tokenizer(texts, vocab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B",
        special_tokens=[("<|bos|>", BOS)])
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def save_tokenizer(tok, outdir, ctx):
    """tokenizer.json as HF tokenizers writes it, plus a tokenizer_config.json
    naming the generic fast tokenizer class (loads in transformers 4 and 5)."""
    tok.save(os.path.join(outdir, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|bos|>",
           "eos_token": "<|eos|>", "pad_token": "<|pad|>", "model_max_length": ctx,
           "clean_up_tokenization_spaces": False}
    with open(os.path.join(outdir, "tokenizer_config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)
        fh.write("\n")
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(outdir)
    probe = "def f(x):\n    return x  # é\n"
    assert hf(probe).input_ids == [BOS] + tok.encode(probe, add_special_tokens=False).ids
    assert hf.decode(hf(probe).input_ids, skip_special_tokens=True) == probe
    return hf


def encode_all(tok, texts):
    encs = tok.encode_batch(texts, add_special_tokens=False)
    out = []
    for e in encs:
        out.append(BOS)
        out.extend(e.ids)
        out.append(EOS)
    return out


def perplexity(model, ids, n, device, batch=16):
    """`silica ppl`'s definition (see the module comment); returns (ppl, nll, tokens).
    Full windows are scored 'batch' at a time: each row is its own sequence, so
    this equals scoring them one by one."""
    import torch
    L = len(ids)
    t = torch.tensor(ids, dtype=torch.long, device=device)
    starts = list(range(0, L - 1, n))
    full = [s for s in starts if L - 1 - s >= n]
    rest = [s for s in starts if L - 1 - s < n]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(full), batch):
            ss = torch.tensor(full[i:i + batch], device=device)
            w = t[ss[:, None] + torch.arange(n + 1, device=device)]
            logits = model(input_ids=w[:, :-1], use_cache=False).logits.double()
            lp = torch.log_softmax(logits, dim=-1)
            total += float(-lp.gather(2, w[:, 1:, None]).sum())
            count += w.shape[0] * n
        for s in rest:
            T = L - 1 - s
            logits = model(input_ids=t[s:s + T][None], use_cache=False).logits[0].double()
            lp = torch.log_softmax(logits, dim=-1)
            total += float(-lp.gather(1, t[s + 1:s + 1 + T, None]).sum())
            count += T
    nll = total / count
    return math.exp(nll), nll, count


def mlx_nll(model, tokenizer, text, n=PPL_WINDOW):
    """(ppl, nll, tokens) of an mlx_lm model on text, `silica ppl`'s definition."""
    import mlx.core as mx
    ids = [tokenizer.bos_token_id] + tokenizer.encode(text, add_special_tokens=False)
    total, count = 0.0, 0
    for s in range(0, len(ids) - 1, n):
        T = min(n, len(ids) - 1 - s)
        logits = model(mx.array(ids[s:s + T])[None])[0].astype(mx.float32)
        lp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        tgt = mx.array(ids[s + 1:s + 1 + T])
        total += float(-mx.take_along_axis(lp, tgt[:, None], axis=-1).sum())
        count += T
    nll = total / count
    return math.exp(nll), nll, count


def mlx_perplexity(model_dir, text, n=PPL_WINDOW, f32=True):
    """The same perplexity with real mlx_lm (cross-check of silica and of the
    MLX conversions).  f32=True casts every float parameter (quantization
    scales and biases included: exact) to float32 so activations are f32, as
    in silica; f32=False runs the model in its stored dtype, as mlx_lm does."""
    import mlx.core as mx
    from mlx_lm import load
    model, tokenizer = load(model_dir)
    if f32:
        model.set_dtype(mx.float32)
    return mlx_nll(model, tokenizer, text, n)


def train_run(cfg, data_t, val_ids, epochs, time_cap, batch, ctx, device, hp, seed):
    """One training run of 'epochs' passes over the data (cosine schedule over
    that many steps, stopped early at time_cap); the weights with the lowest
    validation nll are kept.  Returns a dict with 'state' and the statistics."""
    import torch
    from transformers import LlamaForCausalLM
    torch.manual_seed(seed)
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa").to(device)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["wd"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["peak_lr"], betas=(0.9, 0.95), eps=1e-8, fused=(device == "cuda"))
    n_tok = int(data_t.numel())
    steps = max(1, math.ceil(epochs * n_tok / (batch * ctx)))
    eval_every = max(1, steps // 12)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    offs = torch.arange(ctx + 1, device=device)
    curve, val_curve, window = [], [], []
    best = {"val_nll": float("inf"), "step": 0, "state": None}
    t0 = time.time()
    step = 0
    while step < steps and time.time() - t0 < time_cap:
        if step < hp["warmup"]:
            lr = hp["peak_lr"] * (step + 1) / hp["warmup"]
        else:
            frac = (step - hp["warmup"]) / max(1, steps - hp["warmup"])
            lr = hp["min_lr"] + 0.5 * (hp["peak_lr"] - hp["min_lr"]) * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, n_tok - ctx - 1, (batch,), device=device, generator=gen)
        w = data_t[starts[:, None] + offs]
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=(device == "cuda")):
            logits = model(input_ids=w[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                 w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        window.append(loss.detach())
        if step % eval_every == 0 or step == steps:
            train_loss = float(torch.stack(window).mean())
            window = []
            model.eval()
            _, vnll, _ = perplexity(model, val_ids, ctx, device)
            model.train()
            el = round(time.time() - t0, 1)
            curve.append({"step": step, "tokens": step * batch * ctx, "seconds": el, "lr": lr,
                          "loss": round(train_loss, 4), "val_nll": round(vnll, 4)})
            log(f"  epochs {epochs}: step {step}/{steps} ({step * batch * ctx / n_tok:.2f} ep) "
                f"loss {train_loss:.4f} val nll {vnll:.4f} lr {lr:.2e}")
            if vnll < best["val_nll"]:
                best = {"val_nll": vnll, "step": step,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    if window:  # stopped by the time cap between evaluations
        model.eval()
        _, vnll, _ = perplexity(model, val_ids, ctx, device)
        curve.append({"step": step, "tokens": step * batch * ctx, "seconds": round(time.time() - t0, 1),
                      "lr": lr, "loss": round(float(torch.stack(window).mean()), 4),
                      "val_nll": round(vnll, 4)})
        if vnll < best["val_nll"]:
            best = {"val_nll": vnll, "step": step,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    del model, opt
    return {"epochs": epochs, "steps_planned": steps, "steps": step, "best_step": best["step"],
            "best_val_nll": best["val_nll"], "seconds": round(time.time() - t0, 1),
            "curve": curve, "state": best["state"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--smoke", action="store_true", help="tiny config on the CPU, 20 s budget")
    ap.add_argument("--time-budget", type=float, default=330.0, help="seconds of training, all runs")
    ap.add_argument("--epochs", default="3,6,12",
                    help="comma-separated run lengths in epochs; the run with the best validation nll wins")
    ap.add_argument("--stdlib", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--mlx-ppl", metavar="MODEL_DIR",
                    help="no training: print mlx_lm's perplexity of MODEL_DIR on OUT (a text file) as JSON")
    ap.add_argument("--stored-dtype", action="store_true", help="with --mlx-ppl: compute in the stored dtype")
    a = ap.parse_args()
    t_start = time.time()
    if a.mlx_ppl:
        with open(a.out, encoding="utf-8") as fh:
            ppl, nll, ntok = mlx_perplexity(a.mlx_ppl, fh.read(), f32=not a.stored_dtype)
        print(json.dumps({"ppl": ppl, "nll": nll, "tokens": ntok}))
        return

    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    random.seed(a.seed)
    torch.manual_seed(a.seed)
    device = "cuda" if torch.cuda.is_available() and not a.smoke else "cpu"
    ctx = 512
    epochs_list = [float(e) for e in a.epochs.split(",")]
    if a.smoke:
        vocab, hidden, layers, heads, kv, inter, batch = 512, 64, 2, 4, 2, 128, 4
        budget, epochs_list = 20.0, [0.002, 0.004]
        hp = {"peak_lr": 3e-3, "min_lr": 3e-4, "warmup": 5, "wd": 0.1}
    else:
        vocab, hidden, layers, heads, kv, inter, batch = 8192, 512, 8, 8, 4, 1024, 64
        budget = a.time_budget
        hp = {"peak_lr": 1e-3, "min_lr": 1e-4, "warmup": 100, "wd": 0.1}
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}, "
        f"stdlib {a.stdlib}")

    hfdir = os.path.join(a.out, "demo-hf")
    if os.path.exists(hfdir):
        shutil.rmtree(hfdir)
    os.makedirs(os.path.join(hfdir, "heldout"))

    train_texts, val_texts, held = collect_sources(a.stdlib)
    if a.smoke:
        train_texts = train_texts[:200]
    for k, v in held.items():
        with open(os.path.join(hfdir, "heldout", k), "w", encoding="utf-8", newline="") as fh:
            fh.write(v)

    t0 = time.time()
    tok = train_tokenizer(train_texts, vocab)
    t_tok = time.time() - t0
    save_tokenizer(tok, hfdir, ctx)
    log(f"tokenizer: vocab {tok.get_vocab_size()} trained in {t_tok:.1f} s")

    t0 = time.time()
    data = encode_all(tok, train_texts)
    t_enc = time.time() - t0
    held_ids = [BOS] + tok.encode(heldout_text(held), add_special_tokens=False).ids
    val_ids = ([BOS] + tok.encode("".join(val_texts), add_special_tokens=False).ids)[:VAL_MAX_IDS]
    log(f"encoded {len(data)} training tokens in {t_enc:.1f} s "
        f"({sum(map(len, train_texts)) / len(data):.2f} chars/token); validation {len(val_ids)} ids, "
        f"held-out {len(held_ids)} ids")

    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=inter,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                      head_dim=hidden // heads, max_position_embeddings=ctx, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=True, attention_bias=False,
                      mlp_bias=False, hidden_act="silu", initializer_range=0.02,
                      bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, use_cache=True)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    data_t = torch.tensor(data, dtype=torch.long, device=device)
    runs = []
    t_train0 = time.time()
    total_ep = sum(epochs_list)
    for e in epochs_list:
        cap = budget * e / total_ep
        log(f"run: {e} epochs, time cap {cap:.0f} s")
        runs.append(train_run(cfg, data_t, val_ids, e, cap, batch, ctx, device, hp, a.seed))
        log(f"run: {e} epochs done: best val nll {runs[-1]['best_val_nll']:.4f} "
            f"at step {runs[-1]['best_step']}/{runs[-1]['steps']}")
    t_train = time.time() - t_train0
    win = min(range(len(runs)), key=lambda i: runs[i]["best_val_nll"])
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="eager").to(device)
    model.load_state_dict(runs[win]["state"])
    for r in runs:
        del r["state"]
    model.generation_config.bos_token_id = BOS
    model.generation_config.eos_token_id = EOS
    model.generation_config.pad_token_id = PAD
    n_params = sum(p.numel() for p in model.parameters())  # tied: embedding counted once
    log(f"chosen: the {runs[win]['epochs']}-epoch run at step {runs[win]['best_step']}; "
        f"{n_params / 1e6:.2f} M parameters; training took {t_train:.1f} s")

    # Evaluation in true float32: TF32 off, eager attention, no autocast.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model.eval()
    assert model.config._attn_implementation == "eager"
    ppl_master, nll_master, ntok = perplexity(model, held_ids, PPL_WINDOW, device)
    log(f"held-out (f32 master weights): ppl {ppl_master:.4f} nll {nll_master:.6f} tokens {ntok}")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    ppl, nll, ntok = perplexity(model, held_ids, PPL_WINDOW, device)
    ppl1, nll1, _ = perplexity(model, held_ids, PPL_WINDOW, device, batch=1)
    log(f"held-out (saved bf16 weights, f32 compute): ppl {ppl:.4f} nll {nll:.6f} tokens {ntok} "
        f"(one window at a time: nll {nll1:.6f})")
    _, val_nll, _ = perplexity(model, val_ids, PPL_WINDOW, device)

    prompt_ids = tok.encode(PROMPT).ids
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompt_ids], device=device), max_new_tokens=64,
                             do_sample=False, pad_token_id=PAD)
    gen_ids = gen[0, len(prompt_ids):].tolist()
    sample = tok.decode(gen_ids, skip_special_tokens=False)
    log(f"greedy sample after {PROMPT!r}:\n{PROMPT}{sample}")

    model.to(torch.bfloat16).save_pretrained(hfdir, safe_serialization=True)
    chosen = runs[win]
    res = {
        "ppl": ppl, "nll": nll, "tokens": ntok, "window": PPL_WINDOW,
        "ppl_f32_master": ppl_master, "nll_f32_master": nll_master, "nll_one_window_at_a_time": nll1,
        "val_nll": val_nll, "val_tokens": len(val_ids) - 1,
        "ppl_definition": "ids=[BOS]+encode(heldout,no specials); windows of 512 scored independently; "
                          "nll=mean over targets; weights as saved (bf16) computed in f32, eager, TF32 off",
        "heldout_files": sorted(held), "heldout_chars": len(heldout_text(held)),
        "params": n_params, "config": {"vocab": cfg.vocab_size, "hidden": hidden, "layers": layers,
                                       "heads": heads, "kv_heads": kv, "intermediate": inter, "ctx": ctx},
        "train_files": len(train_texts), "train_chars": sum(map(len, train_texts)),
        "val_files": len(val_texts), "train_tokens": len(data), "batch": batch, "hyper": hp,
        "chosen_run": {"epochs": chosen["epochs"], "step": chosen["best_step"],
                       "tokens_seen": chosen["best_step"] * batch * ctx,
                       "epochs_seen": chosen["best_step"] * batch * ctx / len(data)},
        "loss_first": chosen["curve"][0]["loss"],
        "loss_at_chosen": next(c["loss"] for c in chosen["curve"] if c["step"] == chosen["best_step"]),
        "runs": runs,
        "seconds": {"tokenizer": round(t_tok, 1), "encode": round(t_enc, 1), "train": round(t_train, 1),
                    "total": round(time.time() - t_start, 1)},
        "greedy_prompt": PROMPT, "greedy_prompt_ids": prompt_ids, "greedy_ids": gen_ids,
        "greedy_text": sample,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": sys.version.split()[0]},
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
    }
    for path in (os.path.join(a.out, "results.json"), os.path.join(hfdir, "results.json")):
        with open(path, "w") as fh:
            json.dump(res, fh, indent=1)
    log(f"done in {time.time() - t_start:.1f} s -> {hfdir}")


if __name__ == "__main__":
    main()
