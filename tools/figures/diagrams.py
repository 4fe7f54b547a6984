"""Concept diagrams of the learning path, drawn in the common style (svg.py).

Each function returns (path relative to the repository, svg text). The facts drawn are the ones the
articles state and the code implements: part3 (streaming conversion), part2 (shards), part4
(K-quant super-blocks: ggml's block_q4_K / block_q6_K), part5 (tokenizer, decoder block per family),
part6 (KV cache), part7 (store, hub pull), part8 (serving, the compare app). Change a fact here and in the article together.
"""
from svg import INK2, PALETTE, Svg


def convert_pipeline():
    s = Svg(880, 350, "silica convert: a streaming pipeline",
            "Four stages from source to destination: read (mmap views of any format), sanitize (the "
            "mlx-lm rules: drop rotary buffers, drop a tied lm_head, take eos from generation_config), "
            "cast or quantize (tensor by tensor, 8 MiB chunks), write (shards with an index.json, under a "
            "temporary name, renamed at the end). Below, memory over a run: only one tensor's chunks are "
            "resident at a time, so peak memory is bounded by twice the largest tensor plus 64 MB, not by "
            "the model size.")
    s.text(20, 28, "silica convert SRC DST: read → sanitize → cast / quantize → write", "h")
    stages = [("read", "blue", "mmap, zero-copy views", "safetensors · torch · GGUF · npz"),
              ("sanitize", "violet", "mlx-lm's rules", "drop inv_freq, tied lm_head"),
              ("cast / quantize", "amber", "--dtype, -q --q-bits", "one tensor at a time"),
              ("write", "green", "streaming writer", "shards + index.json")]
    x = 20
    for i, (name, fill, sub1, sub2) in enumerate(stages):
        s.rect(x, 50, 180, 76, fill, rx=6)
        s.text(x + 90, 74, name, "b", "middle")
        s.text(x + 90, 94, sub1, "small", "middle")
        s.text(x + 90, 111, sub2, "small", "middle")
        if i < 3:
            s.line(x + 182, 88, x + 216, 88)
        x += 220
    s.text(20, 150, "config.json, tokenizer files: copied (generation_config's eos_token_id goes into the "
                    "config, as mlx-lm does)", "small")
    s.text(20, 180, "streaming: each tensor goes through in chunks, then its source pages are released",
           "b")
    # chunk lane
    s.rect(20, 194, 240, 44, "blue2", rx=4)
    s.text(140, 212, "source tensor (mapped pages)", "", "middle")
    s.text(140, 228, "read on demand", "small", "middle")
    for k in range(6):
        s.rect(300 + k * 44, 200, 38, 32, "amber" if k == 2 else "amber2", rx=3)
    s.text(300 + 2 * 44 + 19, 220, "8 MiB", "small", "middle")
    s.line(262, 216, 296, 216)
    s.line(566, 216, 600, 216)
    s.rect(604, 194, 256, 44, "green2", rx=4)
    s.text(732, 212, "DST.tmp-… (built under a temp name)", "", "middle")
    s.text(732, 228, "renamed to DST when complete", "small", "middle")
    # memory profile
    s.text(20, 270, "resident memory over the run", "small")
    s.line(20, 330, 860, 330, "axis")
    pts = []
    for k in range(8):
        x0 = 40 + k * 100
        h = (18, 30, 24, 12, 34, 20, 26, 16)[k]
        pts.append(f"L{x0} 330 L{x0} {330 - h} L{x0 + 80} {330 - h} L{x0 + 80} 330")
    s.path("M20 330 " + " ".join(pts) + " L860 330", "seg",
           f' fill="{PALETTE["blue"]}" fill-opacity="0.8"')
    s.line(20, 290, 860, 290, "dash")
    s.text(858, 284, "bound: 2 × largest tensor + 64 MB (not the model size)", "small", "end")
    return "part3/img/convert-pipeline.svg", s.render()


def shards():
    s = Svg(880, 330, "A sharded model directory and its index.json",
            "model.safetensors.index.json holds metadata.total_size and a weight_map from each tensor name "
            "to the shard file that holds it. silica opens each shard named in the map once, in order of "
            "first appearance, checks that every tensor is in the shard the map names, and presents the "
            "shards as one checkpoint. Shard names must be plain file names; config.json is parsed beside "
            "them.")
    s.text(20, 28, "Shards and index.json: many files, one checkpoint", "h")
    s.rect(20, 46, 420, 200, "panel", rx=6)
    s.text(34, 68, "model.safetensors.index.json", "b")
    lines = ['{', '  "metadata": {"total_size": 4965799936},', '  "weight_map": {',
             '    "model.embed_tokens.weight":', '        "model-00001-of-00002.safetensors",',
             '    "model.layers.0.self_attn.q_proj.weight":', '        "model-00001-of-00002.safetensors",',
             '    "lm_head.weight":', '        "model-00002-of-00002.safetensors"', '  }}']
    for i, ln in enumerate(lines):
        s.text(34, 88 + i * 15.5, ln, "mono")
    for i, (name, fill, tensors) in enumerate(
            (("model-00001-of-00002.safetensors", "blue", "embed_tokens, layers 0 … 9"),
             ("model-00002-of-00002.safetensors", "green", "layers 10 … 15, norm, lm_head"))):
        y = 56 + i * 96
        s.rect(540, y, 320, 70, fill, rx=6)
        s.text(700, y + 22, name, "mono", "middle")
        s.text(700, y + 42, "8-byte length · JSON header · data", "small", "middle")
        s.text(700, y + 58, tensors, "small", "middle")
    s.path("M330 152 C 440 152 460 92 536 92")
    s.path("M290 214 C 440 214 460 188 536 188")
    s.rect(540, 216, 320, 30, "gray", rx=6)
    s.text(700, 236, "config.json · tokenizer.json · …", "mono", "middle")
    s.text(20, 276, "sl_checkpoint_open(dir): one sl_checkpoint whose tensors are views into every shard's "
                    "mapping", "")
    s.text(20, 298, "checked: each tensor in the shard weight_map names · no '/' or '..' in shard names · "
                    "without an index, every *.safetensors in sorted order", "small")
    s.text(20, 316, "writers cut shards at --max-shard-size (default 5GB) in module order and always write "
                    "the index (mlx-lm does, even for one shard)", "small")
    return "part2/img/shards.svg", s.render()


def kquant():
    s = Svg(880, 360, "GGUF K-quant super-blocks: Q4_K and Q6_K",
            "A Q4_K super-block stores 256 weights in 144 bytes: a float16 d, a float16 dmin, 12 bytes "
            "packing eight 6-bit sub-block scales and eight 6-bit mins, and 128 bytes of 4-bit codes; "
            "weight = d·scale·q − dmin·min within each of 8 sub-blocks of 32. A Q6_K super-block stores 256 "
            "weights in 210 bytes: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 sub-block "
            "scales and a float16 d; weight = d·scale·(q − 32) within each of 16 sub-blocks of 16.",
            mono_px=11)
    s.text(20, 28, "K-quants: a 256-weight super-block whose sub-block scales are quantized too", "h")
    s.text(20, 50, "Q4_K: 144 bytes / 256 weights = 4.5 bits per weight", "b")
    x, y, scale = 20, 62, 840 / 144
    for name, nb, fill, sub in (("d", 2, "amber", "f16"), ("dmin", 2, "amber2", "f16"),
                                ("scales[12]", 12, "violet", "8 × (6-bit sc, 6-bit m)"),
                                ("qs[128]", 128, "green", "256 × 4-bit codes, 2 per byte")):
        w = nb * scale
        s.rect(x, y, w, 46, fill)
        s.text(x + w / 2, y + 20, name, "mono", "middle")
        if nb >= 12:
            s.text(x + w / 2, y + 36, sub, "small", "middle")
        x += w
    s.text(20, 124, "bytes 0-1       2-3", "mono")
    for k in range(8):
        s.rect(20 + k * 105, 136, 101, 26, "green2", rx=3)
        s.text(70 + k * 105, 153, f"sub-block {k}: 32", "small", "middle")
    s.text(20, 182, "y = d · sc[k] · q − dmin · m[k]      (quantize: llama.cpp's quantize_row_q4_K_ref, "
                    "a weighted search over 21 candidate scales per sub-block)", "mono")
    s.text(20, 222, "Q6_K: 210 bytes / 256 weights = 6.5625 bits per weight", "b")
    x, y, scale = 20, 234, 840 / 210
    for name, nb, fill, sub in (("ql[128]", 128, "green", "low 4 bits of 256 codes"),
                                ("qh[64]", 64, "green2", "high 2 bits, 4 per byte"),
                                ("scales[16]", 16, "violet", "int8"), ("d", 2, "amber", "")):
        w = nb * scale
        s.rect(x, y, w, 46, fill)
        s.text(x + w / 2, y + 20, name, "mono", "middle")
        if sub:
            s.text(x + w / 2, y + 36, sub, "small", "middle")
        x += w
    for k in range(16):
        s.rect(20 + k * 52.5, 290, 49, 22, "green2", rx=3)
        s.text(44.5 + k * 52.5, 305, "16", "small", "middle")
    s.text(20, 332, "y = d · sc[k] · (q − 32),  q = ql | qh << 4 ∈ 0 … 63,  16 sub-blocks of 16", "mono")
    s.text(20, 350, "the legacy blocks (Q4_0, Q8_0) hold 32 weights and one f16 scale; K-quants spend "
                    "their bits on better scales, not more codes", "small")
    return "part4/img/k-quants.svg", s.render()


def tokenizer():
    s = Svg(880, 330, "The tokenizer pipeline: normalize, pre-tokenize, BPE, post-process, decode",
            "Text goes through the normalizer (Unicode NFC/NFKC, replacements), the pre-tokenizer (a regex "
            "split into words and byte-level mapping of bytes to printable characters, so a space becomes "
            "Ġ), the BPE model (merges applied by rank inside each piece, giving vocabulary ids), and the "
            "post-processor (a BOS id in front). Added and special tokens are cut out first and map to "
            "their ids directly. Decoding runs the other way: ids to token strings, byte-level decode back "
            "to UTF-8 bytes, streamed so a character split across tokens is printed only when complete.")
    s.text(20, 28, "Tokenizer: text → ids (as Hugging Face tokenizers runs it), ids → text", "h")
    steps = [("added tokens", "rose", "cut out specials", "<|im_start|> → its id"),
             ("normalize", "blue", "NFC / NFKC, replace", "(per tokenizer.json)"),
             ("pre-tokenize", "violet", "regex split + bytes", '" world" → "Ġworld"'),
             ("BPE model", "amber", "merges by rank", "pieces → vocab ids"),
             ("post-process", "green", "template: BOS first", "[1, …]")]
    x = 20
    for i, (name, fill, a, b) in enumerate(steps):
        s.rect(x, 48, 150, 80, fill, rx=6)
        s.text(x + 75, 72, name, "b", "middle")
        s.text(x + 75, 93, a, "small", "middle")
        s.text(x + 75, 110, b, "small", "middle")
        if i < 4:
            s.line(x + 152, 88, x + 170, 88)
        x += 172
    s.text(20, 160, "a BPE merge loop on one piece (byte-level, the lowest-ranked adjacent pair merges "
                    "first):", "b")
    rows = [("Ġ w o r l d", "start: one symbol per byte"), ("Ġw o r l d", "merge (Ġ, w)"),
            ("Ġw or l d", "merge (o, r)"), ("Ġw or ld", "merge (l, d)"), ("Ġworld", "… until no pair has a rank")]
    for i, (sym, why) in enumerate(rows):
        s.text(40, 182 + i * 18, sym, "mono")
        s.text(240, 182 + i * 18, why, "small")
    s.rect(520, 160, 340, 112, "panel", rx=6)
    s.text(534, 182, "decode (ids → text)", "b")
    s.text(534, 204, "ids → token strings → byte-level map back", "small")
    s.text(534, 222, "→ UTF-8 bytes; SentencePiece: ▁ → space", "small")
    s.text(534, 240, "streaming: a character split across tokens", "small")
    s.text(534, 258, "is held back until its last byte arrives", "small")
    s.text(20, 300, "silica tokenize MODEL --text …  and  silica detokenize MODEL --ids …  give Hugging Face's ids "
                    "and text; part 5 walks through the details", "small")
    s.text(20, 318, "the demo model's tokenizer is byte-level BPE with 8,192 entries (models/demo/tokenizer.json)",
           "small")
    return "part5/img/tokenizer-pipeline.svg", s.render()


FAMILIES = [
    ("llama", "RMSNorm w", "—", "SiLU", "—", "mistral: all slide"),
    ("qwen2", "RMSNorm w", "q/k/v bias", "SiLU", "—", "max_window_layers"),
    ("qwen3", "RMSNorm w", "q/k RMSNorm per head", "SiLU", "—", "explicit head_dim"),
    ("gemma", "(1+w) norm", "—", "GELU tanh", "—", "embed × √hidden"),
    ("gemma2", "(1+w) norm", "logit softcaps", "GELU tanh", "post-attention, pre/post-FFN norms",
     "even layers slide"),
    ("gemma3", "(1+w) norm", "q/k (1+w) norms", "GELU tanh", "post-attention, pre/post-FFN norms",
     "5 of 6 local"),
    ("phi3", "RMSNorm w", "fused qkv_proj", "SiLU", "fused gate_up_proj; partial rotary, longrope", "longrope"),
]


def decoder_block():
    s = Svg(880, 600, "The forward pass of one decoder block, and what each family changes",
            "Left: one decoder layer as silica's engine computes it: x goes through a norm, q, k and v "
            "projections, optional per-head q/k norms, RoPE, the KV cache write, attention over the visible "
            "cached positions, the output projection (with a post-attention norm on Gemma 2 and 3), a "
            "residual add, a second norm, the gated MLP (act(h·Wg) times h·Wu, then Wd), a residual add. "
            "After the last layer, a final norm and the output head give the logits. Right: a table of "
            "what differs per family: norm form, attention extras, activation, extra norms, "
            "sliding-window layout.")
    s.text(20, 28, "One decoder block (src/runtime/forward.c) and the families' differences", "h")
    col, w = 40, 230
    steps = [("embed[ids] · s", "gray", "s = √hidden (gemma), else 1"), ("norm", "violet", "input_layernorm"),
             ("q, k, v = h·Wᵀ (+b)", "blue", ""), ("q/k norm · RoPE", "blue2", "qwen3, gemma3 norms"),
             ("KV cache[p] = k, v", "amber", "f16 · f32 · q8 · q4"), ("attention", "blue", "softmax(q·Kᵀ·scale+mask)·V"),
             ("o = a·Woᵀ (+ norm)", "blue2", "norm: gemma2/3"), ("x = x + o", "gray2", "residual"),
             ("norm", "violet", "post_attention / pre_feedforward"), ("MLP", "green", "(act(h·Wg) ⊙ h·Wu)·Wd"),
             ("x = x + m", "gray2", "residual (gemma2/3: norm m first)"), ("norm · lm_head → logits", "rose",
                                                                            "after the last layer")]
    y = 48
    for i, (label, fill, sub) in enumerate(steps):
        h = 34
        s.rect(col, y, w, h, fill, rx=5)
        s.text(col + 10, y + 15, label, "b" if i in (5, 9) else "")
        if sub:
            s.text(col + 10, y + 29, sub, "small")
        if i < len(steps) - 1:
            s.line(col + w / 2, y + h, col + w / 2, y + h + 8)
        y += h + 9
    s.rect(col - 14, 48 + 43 - 5, w + 28, 43 * 10 + 2, "none", cls="zoom", rx=8)
    s.path(f"M{col + w + 14} {48 + 10 * 43 + 17} C {col + w + 44} {48 + 10 * 43 + 17} {col + w + 44} "
           f"{48 + 43 + 17} {col + w + 18} {48 + 43 + 17}", "arrow")
    s.raw(f'<text x="{col + w + 50}" y="300" class="small" transform="rotate(-90 {col + w + 50} 300)" '
          'text-anchor="middle">× layers</text>')
    # family table
    tx, ty = 336, 52
    cols = (0, 100, 174, 306, 396)
    for c, head in zip(cols, ("family", "norm", "attention", "MLP act.", "notes")):
        s.text(tx + c, ty, head, "b")
    for i, (fam, norm, att, act, extra, note) in enumerate(FAMILIES):
        y = ty + 12 + i * 62
        s.rect(tx - 8, y, 534, 56, "panel" if i % 2 else "gray2", cls="seg", rx=4)
        s.text(tx, y + 20, fam, "b")
        for c, v in zip(cols[1:], (norm, att, act, note)):
            s.text(tx + c, y + 20, v, "small")
        if extra != "—":
            s.text(tx + cols[1], y + 42, extra, "small")
    s.text(tx, 518, "norm(x) = x / √(mean(x²) + eps) · w   (gemma: · (1 + w))", "mono")
    s.text(tx, 538, "GQA: query head h reads KV head h / (heads / kv_heads)", "mono")
    s.text(tx, 558, "all arithmetic in f32", "mono")
    s.text(20, 588, "part5/engine.md has the formulas; every family's logits are checked against "
                    "transformers'", "small")
    return "part5/img/decoder-block.svg", s.render()


def kv_cache():
    s = Svg(880, 400, "The KV cache: slots, a rotating window with attention sinks, quantized rows",
            "Top: a full-attention layer's cache is an array of slots, one per position, allocated once. "
            "Middle: with --max-kv-size N the first 4 positions stay as attention sinks and a ring of "
            "N − 4 + batch − 1 slots holds the most recent positions, overwritten in turn; every query sees "
            "the sinks plus the last N − 4 positions. Bottom: with --kv q8 or q4 a slot's row of kv_heads × "
            "head_dim values is stored as 8- or 4-bit codes with a float16 scale and bias per group of 64, "
            "exactly mx.quantize of the row rounded to f16.")
    s.text(20, 28, "KV cache: one K and one V array of slots per layer, allocated once", "h")
    s.text(20, 52, "full attention (--ctx C): slot = position", "b")
    for k in range(16):
        s.rect(20 + k * 52, 62, 48, 30, "amber" if k < 11 else "gray2", rx=3)
        s.text(44 + k * 52, 82, str(k) if k < 11 else "·", "mono", "middle")
    s.text(20, 108, "positions 0 … 10 written; slots 11 … C−1 allocated, unused (fit counts them)", "small")
    s.text(20, 140, "rotating (--max-kv-size N = 10, batch 1): 4 sinks + a ring", "b")
    for k in range(4):
        s.rect(20 + k * 52, 150, 48, 30, "rose", rx=3)
        s.text(44 + k * 52, 170, str(k), "mono", "middle")
    ring = [18, 19, 20, 21, 16, 17]
    for k, p in enumerate(ring):
        newest = p == 21
        s.rect(250 + k * 52, 150, 48, 30, "amber" if newest else "amber2", rx=3)
        s.text(274 + k * 52, 170, str(p), "mono", "middle")
    s.path("M562 165 C 600 165 600 200 410 200 C 300 200 260 196 262 184", "arrow")
    s.text(610, 160, "the next position (22)", "small")
    s.text(610, 176, "overwrites the oldest slot (16)", "small")
    s.text(20, 214, "sinks: positions 0-3 (rose) · ring: N − 4 + batch − 1 slots · query at 21 sees 0-3 and "
                    "16-21; RoPE positions keep counting", "small")
    s.text(20, 250, "quantized rows (--kv q8 / q4): one slot's row of kv_heads × head_dim values", "b")
    for g in range(4):
        x = 20 + g * 210
        s.rect(x, 262, 170, 34, "blue", rx=3)
        s.text(x + 85, 283, f"group {g}: 64 codes", "small", "middle")
        s.rect(x + 170, 262, 20, 34, "amber")
        s.text(x + 180, 283, "s", "mono", "middle")
        s.rect(x + 190, 262, 16, 34, "violet")
        s.text(x + 198, 283, "b", "mono", "middle")
    s.text(20, 318, "8-bit: 64 bytes + f16 scale + f16 bias per group = 8.5 bits per value · 4-bit: 32 bytes "
                    "+ 4 = 4.5 bits", "small")
    s.text(20, 336, "= mx.quantize(row.astype(float16), group_size=64, bits=B); attention dequantizes each row "
                    "as it reads it", "small")
    s.text(20, 364, "bytes per token = 2 (K, V) × layers × kv_heads × head_dim × bytes per value", "mono")
    s.text(20, 384, "sliding-window layers keep a ring of window + batch − 1 slots the same way, without sinks",
           "small")
    return "part6/img/kv-cache.svg", s.render()


def hub_pull():
    s = Svg(880, 470, "silica pull: the requests, the partial file and resume",
            "A sequence diagram between silica, the hub API, the CDN and the store. silica asks "
            "/api/models/repo/revision/rev for the commit sha, then the recursive tree for the file list "
            "with sizes and LFS sha256s, checks free disk space, then for each file GETs "
            "/repo/resolve/commit/path, follows the 302 to the CDN, and streams the body into "
            "partial/digest-size.part while hashing. After an interruption the next pull rehashes the partial "
            "and sends Range: bytes=N-; the CDN answers 206 with the rest. When size and digest match, the "
            "file is renamed into blobs, the snapshot of relative symlinks is built, and the index row is "
            "written last.")
    s.text(20, 28, "silica pull ORG/NAME: requests, partial downloads, resume", "h")
    lanes = [("silica", 110, "blue"), ("hub API", 350, "violet"), ("CDN (302 target)", 560, "green"),
             ("store ($SILICA_HOME)", 770, "amber")]
    for name, x, fill in lanes:
        s.rect(x - 80, 44, 160, 30, fill, rx=6)
        s.text(x, 64, name, "b", "middle")
        s.line(x, 74, x, 456, "dash")
    X = {k: x for k, x, _ in lanes}

    def msg(y, a, b, label, back=False):
        s.line(X[a], y, X[b], y, "arrow")
        lx = (X[a] + X[b]) / 2
        s.text(lx, y - 5, label, "small" if back else "mono", "middle")

    msg(98, "silica", "hub API", "GET /api/models/{repo}/revision/{rev}")
    msg(120, "hub API", "silica", '{"sha": commit, …}', True)
    msg(146, "silica", "hub API", "GET …/tree/{commit}?recursive=true")
    msg(168, "hub API", "silica", "paths, sizes, lfs.oid (sha256); Link: next", True)
    s.rect(X["silica"] - 92, 178, 184, 22, "gray2", rx=4)
    s.text(X["silica"], 193, "free space ≥ bytes to fetch?", "small", "middle")
    msg(222, "silica", "hub API", "GET /{repo}/resolve/{commit}/{path}")
    msg(244, "hub API", "silica", "302 Location (X-Linked-Size, X-Repo-Commit)", True)
    msg(270, "silica", "CDN (302 target)", "GET (body streamed)")
    msg(292, "silica", "store ($SILICA_HOME)", "partial/<digest>-<size>.part (hashing)")
    s.rect(X["silica"] - 92, 302, 184, 22, "rose", rx=4)
    s.text(X["silica"], 317, "connection drops / kill -9", "small", "middle")
    msg(346, "silica", "CDN (302 target)", "Range: bytes=N-  (N = rehashed partial)")
    msg(368, "CDN (302 target)", "silica", "206 the rest (200 → restart the file)", True)
    msg(394, "silica", "store ($SILICA_HOME)", "size + sha256 ok → rename into blobs/")
    msg(418, "silica", "store ($SILICA_HOME)", "snapshot symlinks, then the index row")
    s.text(20, 448, "429 / 5xx / drops: retried with backoff · digest mismatch: partial deleted, one-line "
                    "error · HF_TOKEN sent as a bearer token", "small")
    return "part7/img/hub-pull.svg", s.render()


def store():
    s = Svg(900, 440, "The silica store: layout and lineage",
            "Left: the store directory. index.db is the SQLite index of models, versions, files, tags and "
            "lineage; blobs/ holds every file once, read-only, named by its sha256; snapshots/org/name/"
            "revision/ is a model directory of relative symlinks into blobs; partial/ holds resumable "
            "downloads; tmp/ and quarantine/ hold temporaries and corrupt blobs. Right: a lineage chain: a hub "
            "pull (endpoint, repo, commit), then a conversion to MLX 4-bit recorded with its source and "
            "options, then a tag. silica show prints the chain.", mono_px=12)
    s.text(20, 28, "$SILICA_HOME: the store", "h")
    s.rect(20, 40, 430, 380, "panel", rx=6)
    rows = [(62, "index.db", "SQLite: models, versions, files,"), (77, "", "tags, lineage (WAL)"),
            (100, "lock, locks/", "flock: SH add, EX delete"), (123, "blobs/", "read-only, by sha256")]
    for y, a, b in rows:
        if a:
            s.text(34, y, a, "mono")
        s.text(200, y, b, "small")
    s.rect(50, 132, 380, 56, "green", rx=4)
    s.text(60, 153, "30/30bcbf…cca   (model.safetensors)", "mono")
    s.text(60, 173, "eb/eb0b48…76f   (config.json)", "mono")
    s.text(34, 212, "snapshots/acme/tiny/<revision>/", "mono")
    s.rect(50, 222, 380, 56, "blue", rx=4)
    s.text(60, 243, "model.safetensors → ../../../../blobs/30/…", "mono")
    s.text(60, 263, "config.json       → ../../../../blobs/eb/…", "mono")
    s.path("M300 238 C 460 238 460 150 432 150")
    s.text(34, 304, "partial/<digest>-<size>.part", "mono")
    s.text(60, 322, "resumable downloads (Range), checked before the rename", "small")
    s.text(34, 352, "tmp/  quarantine/", "mono")
    s.text(60, 370, "gc empties tmp/; verify moves corrupt blobs aside", "small")
    s.text(34, 400, "write order: blobs → snapshot → index row (visible only when complete)", "small")
    s.text(480, 28, "lineage (silica show NAME)", "h")
    chain = [("acme/tiny@358e8bc4c4e0  (hub)", "amber2", "endpoint, repo, commit"),
             ("acme/tiny-mlx4@<content rev>  (convert)", "violet2", "source version + options: --to mlx -q"),
             ("acme/tiny-mlx4:prod  (tag)", "green2", "a name for one version")]
    for i, (a, fill, b) in enumerate(chain):
        y = 44 + i * 110
        s.rect(480, y, 400, 64, fill, rx=6)
        s.text(492, y + 26, a, "mono")
        s.text(492, y + 48, b, "small")
        if i < 2:
            s.line(680, y + 66, 680, y + 106)
            s.text(690, y + 90, "derived from", "small")
    s.text(480, 390, "a local version's revision = sha256 over its sorted (path, sha256)", "small")
    s.text(480, 406, "list: so importing identical files twice gives one version", "small")
    return "part7/img/store.svg", s.render()


def inspect_mmap():
    s = Svg(880, 280, "silica inspect and sl_checkpoint_open: headers read, tensor bytes mapped",
            "A checkpoint file is memory-mapped. silica reads only its header (for safetensors the 8-byte "
            "length and the JSON header; for GGUF the metadata and tensor infos), which gives each tensor's "
            "name, dtype, shape and byte range. sl_checkpoint_open returns tensors whose data pointers point "
            "into the mapping; no tensor byte is read or copied until a program reads it, which is why "
            "inspecting a 70 GB model is instant.")
    s.text(20, 28, "Opening a checkpoint: the header is read, the tensor bytes stay on disk (mmap)", "h")
    s.rect(20, 56, 120, 56, "amber", rx=0)
    s.text(80, 80, "header", "b", "middle")
    s.text(80, 98, "read", "small", "middle")
    for k, (name, fill) in enumerate((("tensor 0", "blue"), ("tensor 1", "green"), ("tensor 2", "violet"),
                                       ("tensor 3", "blue2"))):
        s.rect(140 + k * 180, 56, 180, 56, fill)
        s.text(230 + k * 180, 80, name, "", "middle")
        s.text(230 + k * 180, 98, "mapped, not read", "small", "middle")
    s.text(20, 130, "model.safetensors (memory-mapped: pages load only when touched)", "small")
    s.rect(20, 156, 400, 96, "panel", rx=6)
    s.text(34, 178, "sl_checkpoint", "b")
    s.text(34, 198, "tensors[i]: name, dtype, shape, strides,", "mono")
    s.text(34, 216, "           data → into the mapping", "mono")
    s.text(34, 234, "config (config.json), metadata", "mono")
    for k in range(3):
        s.path(f"M{300 + k * 20} 214 C {320 + k * 20} 150 {230 + k * 180} 150 {230 + k * 180} 116")
    s.rect(460, 156, 400, 96, "gray2", rx=6)
    s.text(474, 178, "what reads tensor bytes", "b")
    s.text(474, 198, "sl_tensor_read (converts to f32 as it copies)", "small")
    s.text(474, 216, "convert, run (the engine reads weights in place)", "small")
    s.text(474, 234, "silica inspect reads none: instant on any size", "small")
    return "part1/img/open-mmap.svg", s.render()


def serving():
    s = Svg(900, 420, "silica serve: requests, the queue, slots and one batched step",
            "Clients (the openai and ollama Python packages, the web chat, curl) send HTTP requests to the "
            "libmicrohttpd thread, which validates the JSON body (4xx naming the field), queues one entry per "
            "choice in the model's FIFO queue and suspends the connection. The model's scheduler thread moves "
            "queued requests into free slots between steps: a request goes to the idle slot whose cached ids "
            "share the longest prefix with its prompt, evaluates only the rest of the prompt, then every active "
            "slot advances by one token in one batched forward pass (sl_gen_step). Each token goes back as a "
            "server-sent event or an NDJSON line; a client that leaves frees its slot at the next step.")
    s.text(20, 28, "HTTP (libmicrohttpd)", "h")
    clients = [("openai SDK", "/v1/chat/completions"), ("ollama client", "/api/chat"), ("web chat  GET /", "SSE"),
               ("curl", "/metrics /health")]
    for i, (a, b) in enumerate(clients):
        s.box(20, 44 + i * 62, 170, 48, "gray2", a, b)
        s.line(192, 68 + i * 62, 240, 68 + i * 62)
    s.box(244, 44, 170, 234, "blue2", "", rx=6)
    s.text(329, 70, "polling thread", "b", "middle")
    for k, t in enumerate(["parse + validate", "400 names the field", "404 model, 413 body", "401 without key",
                           "queue, suspend", "resume on tokens"]):
        s.text(329, 100 + k * 28, t, "small", "middle")
    s.line(416, 160, 460, 160)
    s.text(462, 28, "per model: queue + scheduler thread", "h")
    s.rect(462, 44, 110, 234, "amber2", rx=6)
    s.text(517, 70, "FIFO queue", "b", "middle")
    for k in range(4):
        s.rect(480, 88 + k * 40, 74, 28, "amber", rx=4)
        s.text(517, 107 + k * 40, f"req {k + 5}", "small", "middle")
    s.line(574, 160, 606, 160)
    s.rect(608, 44, 272, 234, "panel", rx=6)
    s.text(744, 66, "--parallel slots: KV cache + sampler", "b", "middle")
    fills = ["green", "green", "green", "gray2"]
    labels = ["slot 0: req 1  pos 812", "slot 1: req 2  pos 95", "slot 2: req 4  pos 40", "slot 3: idle, keeps its KV"]
    for k in range(4):
        s.rect(624, 78 + k * 36, 240, 28, fills[k], rx=4)
        s.text(634, 97 + k * 36, labels[k], "mono")
    s.rect(624, 228, 240, 36, "violet2", rx=4)
    s.text(744, 244, "sl_gen_step: one forward pass,", "small", "middle")
    s.text(744, 258, "one token for every active slot", "small", "middle")
    s.path("M744 280 C 744 330 329 330 329 282")
    s.text(540, 342, "each token: an SSE event / NDJSON line (stop strings held back)", "small", "middle")
    s.text(20, 366, "between steps: new requests join free slots (continuous batching); the idle slot with the longest "
                    "common prefix is reused", "small")
    s.text(20, 384, "exactness: a request's tokens depend only on its prompt, parameters and seed, never on the "
                    "other slots", "small")
    s.text(20, 402, "a client gone (socket closed) cancels its sequence at the next step; SIGTERM: no new "
                    "connections, in-flight requests finish", "small")
    return "part8/img/serving.svg", s.render()


def compare_app():
    s = Svg(900, 470, "silica compare: one model, every route, every engine, the same token ids",
            "REF, a float PyTorch checkpoint, is converted by silica convert into an MLX 4-bit directory "
            "and a GGUF Q4_0 file, and --quantize makes more candidates from REF (MLX 8-bit, mixed_3_6, "
            "GGUF Q8_0). The text is encoded once with REF's tokenizer ([BOS] + encode(text), windows of "
            "--ctx tokens). Each (model, engine) pair runs in a fresh child process speaking one JSON-lines "
            "protocol on stdin and stdout: silica compare --serve, and Python adapters for mlx_lm, "
            "transformers and llama.cpp's libllama; a pair whose format the engine cannot read gets no row, a "
            "missing framework a row saying not installed. Every engine returns raw float32 logits of every "
            "position and greedy ids; silica computes the statistics against REF on the reference engine: "
            "KL divergence (mean, p99, max), top-1 agreement, perplexity, identical greedy prefix, speed, "
            "peak RSS, size and bits per weight, printed as a table or written as JSON, HTML and SVG.")
    s.text(20, 28, "silica compare REF CAND… : convert, run everywhere on the same ids, judge against REF", "h")
    # left column: the models
    s.text(20, 58, "1. the models (part 3, part 4)", "b")
    s.box(20, 70, 200, 46, "violet", "REF: demo-pt", "pytorch_model.bin, f32")
    cands = [("demo-mlx-q4", "mlx", "convert --to mlx -q"), ("demo-Q4_0.gguf", "gguf", "convert --to gguf"),
             ("q8 · mixed_3_6", "mlx", "--quantize (from REF)"), ("Q8_0", "gguf", "--quantize (from REF)")]
    for i, (name, kind, how) in enumerate(cands):
        y = 140 + i * 56
        s.box(20, y, 200, 46, "amber2", name, f"{kind}: {how}")
    s.path("M120 118 L120 134")
    # ids
    s.text(250, 58, "2. the same token ids", "b")
    s.rect(250, 70, 190, 90, "blue2", rx=6)
    s.text(345, 94, "REF's tokenizer, once", "", "middle")
    s.text(345, 114, "[BOS] + encode(text)", "mono", "middle")
    s.text(345, 132, "windows of --ctx tokens", "small", "middle")
    s.text(345, 148, "(or --prompts, --ids)", "small", "middle")
    s.line(222, 93, 248, 93)
    s.text(250, 196, "each (model, engine) pair:", "small")
    s.text(250, 212, "a fresh child process", "small")
    s.text(250, 228, "load → eval → quit", "mono")
    s.text(250, 248, "JSON lines on stdin / stdout", "small")
    s.text(250, 264, "(part8/adapters/PROTOCOL.md)", "small")
    s.line(345, 162, 345, 182)
    # engines
    s.text(470, 58, "3. the engines", "b")
    engines = [("silica", "silica compare --serve", "hf mlx gguf", "green"),
               ("mlx", "mlx_adapter.py (mlx_lm)", "hf mlx", "green2"),
               ("torch", "torch_adapter.py (transformers)", "hf", "green2"),
               ("llama.cpp", "llama_cpp_adapter.py", "gguf", "green2")]
    for i, (name, how, fmts, fill) in enumerate(engines):
        y = 70 + i * 58
        s.rect(470, y, 200, 48, fill, rx=6)
        s.text(482, y + 19, name, "b")
        s.text(482, y + 36, how, "small")
        s.text(662, y + 19, fmts, "small", "end")
        s.line(442, 115, 468, y + 24)
    s.text(470, 314, "a format it cannot read: no row", "small")
    s.text(470, 330, "framework missing: \"not installed\"", "small")
    # judge
    s.text(700, 58, "4. the judge (silica)", "b")
    s.rect(700, 70, 180, 200, "panel", rx=6)
    s.text(790, 92, "raw f32 logits of every", "small", "middle")
    s.text(790, 106, "position + greedy ids", "small", "middle")
    for k, t in enumerate(["KLD mean / p99 / max", "top-1 agreement %", "ppl and Δppl", "greedy prefix",
                           "tok/s, TTFT, peak RSS", "size, bits per weight"]):
        s.text(714, 134 + k * 22, "· " + t, "")
    for i in range(4):
        s.line(672, 94 + i * 58, 698, 94 + i * 58)
    s.line(790, 272, 790, 300)
    s.box(700, 302, 180, 44, "amber", "against REF", "on --ref-engine (silica)")
    # outputs
    s.text(20, 392, "5. the report", "b")
    outs = [("table", "stdout"), ("--json", "one row per pair"), ("--html", "inline SVG charts"),
            ("--svg", "KLD vs bits per weight")]
    for i, (a, b) in enumerate(outs):
        s.box(130 + i * 190, 372, 170, 44, "gray2", a, b)
    s.line(790, 348, 790, 370)
    s.text(20, 448, "all engines are judged by the same arithmetic (double precision, in silica); "
                    "speeds come from each engine's own timings", "small")
    return "part8/img/compare-app.svg", s.render()


ALL = [inspect_mmap, convert_pipeline, shards, kquant, tokenizer, decoder_block, kv_cache, hub_pull, store, serving, compare_app]
__all__ = ["ALL", "INK2"]
