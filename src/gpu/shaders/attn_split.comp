// attn_split.comp — attention of a few tokens (generation) split over the
// keys (flash-decoding).  Workgroup (c, y, t): token t (position step[0] + t),
// chunk c of its visible keys (kv_visible's order: keys c * chunk .. c *
// chunk + chunk - 1), and up to 8 query heads h0 .. h0 + nh - 1 of one GQA
// group (y = kvh * ngr + r: KV head kvh, the group's r-th run of hpg heads),
// which share every K and V load: each thread scores one key of a tile of 64
// against all nh queries (q . k * scale, optional softcap), then each output
// o = tid + 64 k (head o / D, dimension o % D) accumulates the tile's values
// with the running maximum's rescaling (online softmax).  Per head it writes
// the chunk's partial softmax to part[((t * H + h) * nc_max + c) * (D + 2)]:
// m (the chunk's maximum score), l = sum exp(s - m), then acc[d] =
// sum exp(s - m) v[d]; a chunk past the token's keys writes m = -inf, l = 0.
// attn_merge.comp combines the chunks.  With direct (a single chunk: short
// contexts) it writes the output itself instead, acc / l at o[t * ldo + h * D
// + d] (binding 3 is then the output), and with quant (D a multiple of 32)
// its 32-value blocks quantized for the GGUF matmul after it (quantize.glsl),
// as attn_merge.comp would: no merge dispatch.  The chunk size is the session's
// (vk_attn.c: fixed by the context size, not by the device), so the result
// does not depend on the GPU.  nh * D <= 2048 (the outputs: 32 a thread).
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "attn_split.glsl"   // bindings, push constants, the KV cache readers

shared float qs[2048];          // the nh queries, head j at j * D
shared float ps[8 * 64];        // the tile's scores, then weights, head j at j * 64
shared uint slots[64];          // the tile's slots
shared float hm[8], hmt[8], hl[8], hal[8];   // per head: running max, the tile's max, sum, rescale

void main() {
    uint c = gl_WorkGroupID.x, y = gl_WorkGroupID.y, t = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x, D = p.D;
    uint G = p.H / p.KV, ngr = (G + p.hpg - 1u) / p.hpg, kvh = y / ngr, r = y % ngr;
    uint h0 = kvh * G + r * p.hpg, nh = min(p.hpg, G - r * p.hpg), e0 = kvh * D, nout = nh * D;
    uint pos = step[0] + t, s0, ns, r0, nv;
    kv_visible(pos, p.sink, p.span, p.win, s0, ns, r0, nv);
    uint kb = min(c * p.chunk, nv), ke = min(kb + p.chunk, nv);
    for (uint i = tid; i < nout; i += 64u) qs[i] = qkv[t * p.qkv_w + h0 * D + i];
    if (tid < nh) {
        hm[tid] = -1.0 / 0.0;
        hl[tid] = 0.0;
    }
    barrier();
    float acc[32];
    for (uint k = 0u; k < 32u; k++) acc[k] = 0.0;
    for (uint k0 = kb; k0 < ke; k0 += 64u) {
        uint ki = k0 + tid, nk = min(64u, ke - k0);
        float s[8];
        for (uint j = 0u; j < 8u; j++) s[j] = 0.0;
        if (ki < ke) {
            uint slot = kv_slot(ki < ns ? s0 + ki : r0 + (ki - ns), p.sink, p.ring), row = p.KV * D;
            slots[tid] = slot;
            if (p.bits == 0u && p.kv_f32 == 0u) {
                uint w0 = (slot * row + e0) / 2u;
                for (uint i = 0u; i < D / 2u; i++) {
                    vec2 f = unpackHalf2x16(kc[w0 + i]);
                    for (uint j = 0u; j < 8u; j++) {
                        if (j >= nh) break;
                        s[j] += qs[j * D + 2u * i] * f.x + qs[j * D + 2u * i + 1u] * f.y;
                    }
                }
            } else {
                for (uint i = 0u; i < D; i++) {
                    float kv = kv_at(0u, slot, e0 + i);
                    for (uint j = 0u; j < 8u; j++) {
                        if (j >= nh) break;
                        s[j] += qs[j * D + i] * kv;
                    }
                }
            }
            for (uint j = 0u; j < 8u; j++) s[j] = attn_score(s[j]);
        }
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            ps[j * 64u + tid] = ki < ke ? s[j] : -1.0 / 0.0;
        }
        barrier();
        if (tid < nh) {   // thread j: head j's maximum so far
            float mt = hm[tid];
            for (uint k = 0u; k < nk; k++) mt = max(mt, ps[tid * 64u + k]);
            hmt[tid] = mt;
        }
        barrier();
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            ps[j * 64u + tid] = ki < ke ? exp(s[j] - hmt[j]) : 0.0;
        }
        barrier();
        if (tid < nh) {   // thread j: head j's sum, rescaled to the new maximum
            float al = exp(hm[tid] - hmt[tid]), lt = 0.0;
            for (uint k = 0u; k < nk; k++) lt += ps[tid * 64u + k];
            hl[tid] = hl[tid] * al + lt;
            hal[tid] = al;
            hm[tid] = hmt[tid];
        }
        barrier();
        for (uint k = 0u; k < 32u; k++) {
            uint o = tid + 64u * k, j = o / D, d = o % D;
            if (o >= nout) break;
            float a = acc[k] * hal[j];
            for (uint jj = 0u; jj < nk; jj++) a += ps[j * 64u + jj] * kv_at(1u, slots[jj], e0 + d);
            acc[k] = a;
        }
        barrier();   // ps, slots and hal are rewritten by the next tile
    }
    if (p.direct != 0u) {   // the only chunk: the heads' output (qs, no longer read, holds it for the blocks)
        for (uint k = 0u; k < 32u; k++) {
            uint o = tid + 64u * k, j = o / D, d = o % D;
            if (o >= nout) break;
            float a = acc[k] / hl[j];
            part[t * p.ldo + (h0 + j) * D + d] = a;
            qs[o] = a;
        }
        if (p.quant == 0u) return;
        barrier();
        for (uint b = tid; b < nout / 32u; b += 64u) {
            float v[32];
            for (uint i = 0u; i < 32u; i++) v[i] = qs[b * 32u + i];
            quantize_block(v, (t * (p.H * D / 32u) + h0 * D / 32u + b) * 9u);
        }
        return;
    }
    for (uint k = 0u; k < 32u; k++) {
        uint o = tid + 64u * k, j = o / D, d = o % D;
        if (o >= nout) break;
        part[((t * p.H + h0 + j) * p.nc_max + c) * (D + 2u) + 2u + d] = acc[k];
    }
    if (tid < nh) {
        uint b = ((t * p.H + h0 + tid) * p.nc_max + c) * (D + 2u);
        part[b] = hm[tid];
        part[b + 1u] = hl[tid];
    }
}
