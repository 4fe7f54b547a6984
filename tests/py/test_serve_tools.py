"""Tool calling in `silica serve` and its parser (`silica template --parse-tool-calls`).

Oracles:
- the prompt: transformers' own apply_chat_template(messages, tools=...) on
  the real chat templates in tests/data/templates (the server renders the
  OpenAI request; /apply-template returns the text it encodes), and for
  Ollama's /api/chat the token count of that text;
- the parser: each family's own chat template, rendered by transformers
  for an assistant turn that calls tools, is exactly what the model was
  trained to write; parsing it must give back the calls.  Strings written
  from the families' public docs (Meta's Llama 3.1 JSON tool calling,
  Qwen's <tool_call> blocks, Mistral's [TOOL_CALLS]) add the cases a
  template never renders (content before the calls, malformed JSON);
- end to end: a tiny model whose weights force one answer token (an added
  token that spells a tool call in the family's format), then EOS; the
  real `openai` and `ollama` packages must see message.tool_calls, streamed
  or not.
"""
import copy
import json
import os

import httpx
import jsonschema
import numpy as np
import openai
import pytest
from safetensors.numpy import save_file
from transformers import AutoTokenizer

from conftest import ROOT, TEMPLATES, run_silica
from hf_models import family_config
from test_serve import Server

DEMO = ROOT / "models" / "demo"

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Search the web \u2014 \u691c\u7d22",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                    "max_results": {"type": "integer", "default": 5}},
                   "required": ["query"]}}}
TOOLS = [WEATHER, SEARCH]

# the tool-using templates and the format each writes calls in
FAMILIES = {
    "meta-llama-Llama-3.1-8B-Instruct": "llama3",
    "meta-llama-Llama-3.2-3B-Instruct": "llama3",
    "meta-llama-Llama-3.3-70B-Instruct": "llama3",
    "Qwen-Qwen2.5-7B-Instruct": "hermes",
    "Qwen-Qwen3-0.6B": "hermes",
    "Qwen-QwQ-32B": "hermes",
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": "hermes",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": "hermes",
    "ibm-granite-granite-4.0": "hermes",
    "mistralai-Mistral-Nemo-Instruct-2407": "mistral",
    "Mistral-Small-3.2-24B-Instruct-2506": "mistral",
    "unsloth-mistral-Devstral-Small-2507": "mistral",
    "mistralai-Ministral-3-14B-Reasoning-2512": "mistral",
    # templates whose calls are written another way: no parsing, plain content
    "Qwen3-Coder": "none",
    "GLM-4.6": "none",
    "google-gemma-2-2b-it": "none",
}
SINGLE_CALL_ONLY = {"llama3"}   # Meta's templates raise on several calls in one turn


def call(id_, name, args, as_string):
    return {"id": id_, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args) if as_string else args}}


def conversations(as_string):
    """OpenAI-shaped conversations (arguments as JSON strings when as_string,
    else as objects: what transformers' documentation passes)."""
    c = lambda *a: call(*a, as_string)  # noqa: E731
    return {
        "tools_available": [{"role": "system", "content": "You are helpful."},
                            {"role": "user", "content": "What's the weather in Paris?"}],
        "tool_result": [{"role": "user", "content": "Weather in Paris?"},
                        {"role": "assistant", "content": "", "tool_calls": [
                            c("call00001", "get_weather", {"location": "Paris, France", "unit": "celsius"})]},
                        {"role": "tool", "tool_call_id": "call00001", "name": "get_weather",
                         "content": "{\"temperature\": 22}"},
                        {"role": "assistant", "content": "It is 22\u00b0C."},
                        {"role": "user", "content": "Thanks!"}],
        "null_content": [{"role": "user", "content": "Find cats"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             c("call00002", "search", {"query": "cats", "max_results": 3})]},
                         {"role": "tool", "tool_call_id": "call00002", "name": "search", "content": "[]"}],
    }


# ---- a model whose answer is forced: weights that make one added token win, then EOS ----

FORCED = {   # what the model "writes" in each family's format
    "hermes": ("Qwen-Qwen2.5-7B-Instruct",
               'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris, France", '
               '"unit": "celsius"}}\n</tool_call>'),
    "llama3": ("meta-llama-Llama-3.1-8B-Instruct",
               '{"name": "get_weather", "parameters": {"location": "Paris, France", "unit": "celsius"}}'),
    "mistral": ("mistralai-Mistral-Nemo-Instruct-2407",
                '[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}}, '
                '{"name": "search", "arguments": {"query": "Paris"}}]'),
}
FORCED_CALLS = {"hermes": [("get_weather", {"location": "Paris, France", "unit": "celsius"})],
                "llama3": [("get_weather", {"location": "Paris, France", "unit": "celsius"})],
                "mistral": [("get_weather", {"location": "Paris, France", "unit": "celsius"}),
                            ("search", {"query": "Paris"})]}
FORCED_CONTENT = {"hermes": "Let me check.", "llama3": None, "mistral": None}
T_ID, EOS_ID = 8192, 1   # the added token (after the demo vocabulary) and the demo's <|eos|>


def forced_weights(d):
    """A llama whose layers add nothing (o_proj, down_proj zero), embeddings all
    ones and final norm picking dimension 0: every position's logits are
    lm_head[:, 0], i.e. 10 for T, 9.5 for EOS, 0 elsewhere.  Greedy decoding
    writes T, then (T penalised by presence_penalty 1 or Ollama's default
    repeat_penalty 1.1) EOS."""
    c = family_config("llama", hidden=32, inter=64, layers=1, heads=2, kv_heads=1, vocab=T_ID + 8, tied=False,
                      dtype="float32")
    c.update(bos_token_id=0, eos_token_id=EOS_ID, pad_token_id=2, max_position_embeddings=4096)
    h, V = 32, c["vocab_size"]
    rng = np.random.default_rng(0)
    t = {"model.embed_tokens.weight": np.ones((V, h), np.float32), "model.norm.weight": np.eye(1, h, 0, np.float32)[0]}
    lm = np.zeros((V, h), np.float32)
    lm[T_ID, 0], lm[EOS_ID, 0] = 10.0, 9.5
    t["lm_head.weight"] = lm
    p = "model.layers.0."
    for n, shape in [("self_attn.q_proj", (h, h)), ("self_attn.k_proj", (16, h)), ("self_attn.v_proj", (16, h)),
                     ("mlp.gate_proj", (64, h)), ("mlp.up_proj", (64, h))]:
        t[p + n + ".weight"] = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    t[p + "self_attn.o_proj.weight"] = np.zeros((h, h), np.float32)
    t[p + "mlp.down_proj.weight"] = np.zeros((h, 64), np.float32)
    t[p + "input_layernorm.weight"] = np.ones(h, np.float32)
    t[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps(c))
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": EOS_ID}))


def model_dir(root, name, template, forced_text, weights=None):
    """The demo tokenizer (plus the added token T spelling forced_text) with a
    real chat template; weights shared from `weights` when given."""
    d = root / name
    d.mkdir()
    if weights:
        for f in ("model.safetensors", "config.json", "generation_config.json"):
            (d / f).symlink_to(weights / f)
    else:
        forced_weights(d)
    tok = json.loads((DEMO / "tokenizer.json").read_text())
    tok["added_tokens"].append({"id": T_ID, "content": forced_text, "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": False, "special": False})
    (d / "tokenizer.json").write_text(json.dumps(tok))
    cfg = json.loads((DEMO / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tools")
    base = None
    dirs = {}
    for fam, (tmpl, text) in FORCED.items():
        d = model_dir(root, "forced-" + fam, (TEMPLATES / f"{tmpl}.jinja").read_text(), text, base)
        base = base or d
        dirs["forced-" + fam] = d
        # the trained demo weights with the family's template: tool_choice "required" / named
        dirs["demo-" + fam] = model_dir(root, "demo-" + fam, (TEMPLATES / f"{tmpl}.jinja").read_text(), "unused",
                                        DEMO)
    for name in FAMILIES:
        dirs[name] = model_dir(root, name, (TEMPLATES / f"{name}.jinja").read_text(), "unused", base)
    # a tokenizer_config with named templates: transformers renders "tool_use" when tools are given
    d = model_dir(root, "named", "", "unused", base)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = [{"name": "default", "template": (TEMPLATES / "google-gemma-2-2b-it.jinja").read_text()},
                            {"name": "tool_use", "template": (TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text()}]
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    dirs["named"] = d
    return dirs


@pytest.fixture(scope="module")
def srv(models):
    s = Server(*models.values(), "--parallel", "2", "--ctx", "2048")
    yield s
    rc, err = s.stop()
    assert rc == 0, err


def hf_render(d, messages, tools):
    tok = AutoTokenizer.from_pretrained(str(d))
    return tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)


# ---- the prompt: equal to transformers' apply_chat_template(messages, tools=...) ----

@pytest.mark.parametrize("name", [n for n in FAMILIES] + ["named"])
def test_prompt_with_tools_equals_transformers(srv, models, name):
    checked = 0
    for conv, msgs in conversations(as_string=True).items():
        hf_msgs = conversations(as_string=False)[conv]
        try:
            want = hf_render(models[name], hf_msgs, TOOLS)
        except Exception as e:   # the template itself refuses (raise_exception): so must the server
            r = httpx.post(srv.url + "/apply-template", json={"model": name, "messages": msgs, "tools": TOOLS})
            assert r.status_code == 400, (conv, e)
            continue
        r = httpx.post(srv.url + "/apply-template", json={"model": name, "messages": msgs, "tools": TOOLS})
        assert r.status_code == 200, r.text
        assert r.json()["prompt"] == want, conv
        checked += 1
    assert checked >= (0 if name == "google-gemma-2-2b-it" else 2)   # gemma 2 knows no system or tool role


def test_ollama_prompt_with_tools(srv, models):
    """Ollama's /api/chat renders the prompt transformers renders from the
    request the `ollama` client sends (it reshapes tool schemas and drops
    ids): its prompt_eval_count is that text's token count."""
    sent = []
    hook = {"request": [lambda req: sent.append(json.loads(req.read()))]}
    msgs = conversations(as_string=False)["tool_result"]
    for m in msgs:
        if m["role"] == "tool":
            m["tool_name"] = m.pop("name")
    d = models["Qwen-Qwen2.5-7B-Instruct"]
    r = srv.ollama(event_hooks=hook).chat(model=d.name, messages=msgs, tools=TOOLS,
                                          options={"num_predict": 1, "temperature": 0})
    body = sent[0]
    hf_msgs = [{("name" if k == "tool_name" else k): v for k, v in m.items()} for m in body["messages"]]
    want = hf_render(d, hf_msgs, body["tools"])
    assert "<tools>" in want and "<tool_call>" in want
    n = len(AutoTokenizer.from_pretrained(str(d))(want, add_special_tokens=False)["input_ids"])
    assert r.prompt_eval_count == n


# ---- the parser against each family's own template ----

def template_answer(tmpl_file, calls):
    """What a template renders for an assistant turn calling `calls`: the text
    between the generation prompt and the end-of-turn token."""
    src = tmpl_file.read_text()
    from transformers.utils.chat_template_utils import render_jinja_template
    user = [{"role": "user", "content": "Weather in Paris?"}]
    asst = {"role": "assistant", "content": "", "tool_calls": [call(f"call0000{i}", n, a, False) for i, (n, a) in enumerate(calls)]}
    kw = dict(tools=TOOLS, chat_template=src, bos_token="<s>", eos_token="</s>")
    head = render_jinja_template(conversations=[user], add_generation_prompt=True, **kw)[0][0]
    full = render_jinja_template(conversations=[user + [asst]], add_generation_prompt=False, **kw)[0][0]
    # the answer starts where the rendering with it leaves the generation prompt
    # (Qwen3 writes an empty <think></think> into an answered turn: that stays content)
    k = len(os.path.commonprefix([head, full]))
    if k < len(head):   # diverged inside the generation prompt (QwQ opens <think>): back to its line start
        k = full.rfind("\n", 0, k) + 1
    body = full[k:]
    for end in ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "</s>", "<|end_of_text|>"):
        body = body.split(end)[0]
    return body


def parse(text, model=None, fmt=None):
    args = ["template"] + ([str(model)] if model else []) + ["--parse-tool-calls", "-"]
    args += ["--tool-format", fmt] if fmt else []
    r = run_silica(*args, input=text, check=True)
    return json.loads(r.out)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_parse_what_the_template_renders(name):
    fam = FAMILIES[name]
    tmpl = TEMPLATES / f"{name}.jinja"
    calls = [("get_weather", {"location": "Paris, France", "unit": "celsius"})]
    if fam not in SINGLE_CALL_ONLY:
        calls.append(("search", {"query": "caf\u00e9 \"quoted\"", "max_results": 3}))
    body = template_answer(tmpl, calls)
    got = parse(body, model=tmpl)
    assert got["format"] == fam
    if fam == "none":   # not a format silica parses: all content
        assert got["tool_calls"] == [] and got["content"] == body
        return
    assert [(c["name"], json.loads(c["arguments"])) for c in got["tool_calls"]] == calls, body
    assert got["content"] == body[:len(got["content"])] and got["content"].strip() == got["content"]


DOC_CASES = [   # (format, answer, content, calls)
    # Meta: "Llama 3.1 ... JSON based tool calling": the answer is the JSON object
    ("llama3", '{"name": "get_weather", "parameters": {"location": "San Francisco, CA"}}', "",
     [("get_weather", {"location": "San Francisco, CA"})]),
    ("llama3", '<|python_tag|>{"name": "get_weather", "parameters": {"location": "Oslo"}}', "",
     [("get_weather", {"location": "Oslo"})]),
    ("llama3", '\n{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": [1, 2]}}', "",
     [("a", {}), ("b", {"x": [1, 2]})]),
    ("llama3", '{"answer": 42}', '{"answer": 42}', []),                       # JSON, not a call
    ("llama3", '{"name": "a", "parameters": {}} and more', '{"name": "a", "parameters": {}} and more', []),
    ("llama3", 'The weather is fine.', 'The weather is fine.', []),
    # Qwen / Hermes: <tool_call> blocks after optional text
    ("hermes", 'Sure!\n\n<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call>\n'
               '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome"}}\n</tool_call>', "Sure!",
     [("search", {"query": "x"}), ("get_weather", {"location": "Rome"})]),
    ("hermes", '<tool_call>\n{"name": "f", "arguments": "{\\"a\\": 1}"}', "", [("f", {"a": 1})]),  # unclosed at EOS
    ("hermes", '<tool_call>\n{"name": "f", "arguments": {"a": }\n</tool_call>',
     '<tool_call>\n{"name": "f", "arguments": {"a": }\n</tool_call>', []),  # malformed: content
    ("hermes", 'no calls here', 'no calls here', []),
    # Mistral: [TOOL_CALLS] then a JSON list (v3) or NAME[ARGS]{...} per call (v11)
    ("mistral", '[TOOL_CALLS][{"name": "f", "arguments": {"a": 1}, "id": "abcdefghi"}]', "", [("f", {"a": 1})]),
    ("mistral", 'Ok.[TOOL_CALLS]f[ARGS]{"a": 1}[TOOL_CALLS]g[CALL_ID]x1y2z3w4v[ARGS]{}', "Ok.",
     [("f", {"a": 1}), ("g", {})]),
    ("mistral", '[TOOL_CALLS]f[ARGS]not json', '[TOOL_CALLS]f[ARGS]not json', []),
    ("none", '<tool_call>{"name": "f", "arguments": {}}</tool_call>',
     '<tool_call>{"name": "f", "arguments": {}}</tool_call>', []),
]


@pytest.mark.parametrize("fmt,text,content,calls", DOC_CASES)
def test_parse_documented_formats(fmt, text, content, calls):
    got = parse(text, fmt=fmt)
    assert got["content"] == content
    assert [(c["name"], json.loads(c["arguments"])) for c in got["tool_calls"]] == calls
    if "[CALL_ID]" in text:
        assert got["tool_calls"][1]["id"] == "x1y2z3w4v"


@pytest.mark.badinput
def test_parse_bad_usage():
    r = run_silica("template", "--parse-tool-calls", "-", "--tool-format", "xml", input="")
    assert r.rc == 2 and "llama3, hermes, mistral" in r.err
    r = run_silica("template", "--parse-tool-calls", "-", input="")
    assert r.rc == 2


# ---- end to end through the real clients ----

def oai_calls(msg_calls):
    return [(c.function.name, json.loads(c.function.arguments)) for c in msg_calls]


@pytest.mark.parametrize("fam", list(FORCED))
def test_openai_tool_calls(srv, fam):
    cl = srv.openai()
    model = "forced-" + fam
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = cl.chat.completions.create(model=model, messages=msgs, tools=TOOLS, temperature=0, presence_penalty=1,
                                   max_tokens=8)
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls"
    assert oai_calls(ch.message.tool_calls) == FORCED_CALLS[fam]
    assert ch.message.content == FORCED_CONTENT[fam]
    ids = [c.id for c in ch.message.tool_calls]
    assert all(c.type == "function" for c in ch.message.tool_calls) and len(set(ids)) == len(ids)
    if fam == "mistral":   # Mistral's templates require 9 alphanumerics
        assert all(len(i) == 9 and i.isalnum() for i in ids)
    # streamed: the same calls in delta.tool_calls, the same content
    content, calls, finish = "", {}, None
    for chunk in cl.chat.completions.create(model=model, messages=msgs, tools=TOOLS, temperature=0,
                                            presence_penalty=1, max_tokens=8, stream=True):
        d = chunk.choices[0].delta
        content += d.content or ""
        for tc in d.tool_calls or []:
            e = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
            e["name"] += tc.function.name or ""
            e["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert content == (FORCED_CONTENT[fam] or "")
    assert [(calls[i]["name"], json.loads(calls[i]["arguments"])) for i in sorted(calls)] == FORCED_CALLS[fam]
    sids = [calls[i]["id"] for i in sorted(calls)]
    assert all(i and len(i) == len(ids[0]) for i in sids) and len(set(sids)) == len(sids)
    # tool_choice "none": the text comes back as content
    r = cl.chat.completions.create(model=model, messages=msgs, tools=TOOLS, tool_choice="none", temperature=0,
                                   presence_penalty=1, max_tokens=8)
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content == FORCED[fam][1]
    # no tools: no parsing either
    r = cl.chat.completions.create(model=model, messages=msgs, temperature=0, presence_penalty=1, max_tokens=8)
    assert r.choices[0].message.content == FORCED[fam][1] and not r.choices[0].message.tool_calls


def test_openai_round_trip(srv, models):
    """The assistant message the server returned, sent back with the tool's
    result, renders like transformers renders the same turn."""
    cl = srv.openai()
    model = "forced-hermes"
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = cl.chat.completions.create(model=model, messages=msgs, tools=TOOLS, temperature=0, presence_penalty=1)
    m = r.choices[0].message.model_dump(exclude_none=True)
    tc = m["tool_calls"][0]
    turn = msgs + [m, {"role": "tool", "tool_call_id": tc["id"], "content": "{\"temperature\": 22}"}]
    got = httpx.post(srv.url + "/apply-template", json={"model": model, "messages": turn, "tools": TOOLS}).json()
    hf_turn = copy.deepcopy(turn)
    hf_turn[1]["tool_calls"][0]["function"]["arguments"] = json.loads(tc["function"]["arguments"])
    assert got["prompt"] == hf_render(models[model], hf_turn, TOOLS)
    assert "<tool_response>\n{\"temperature\": 22}\n</tool_response>" in got["prompt"]


def test_ollama_tool_calls(srv):
    cl = srv.ollama()
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = cl.chat(model="forced-mistral", messages=msgs, tools=TOOLS, options={"temperature": 0}, stream=False)
    assert [(c.function.name, dict(c.function.arguments)) for c in r.message.tool_calls] == FORCED_CALLS["mistral"]
    assert r.message.content == "" and r.done_reason == "stop"
    content, calls = "", []
    for chunk in cl.chat(model="forced-hermes", messages=msgs, tools=TOOLS, options={"temperature": 0}, stream=True):
        content += chunk.message.content or ""
        calls += [(c.function.name, dict(c.function.arguments)) for c in chunk.message.tool_calls or []]
    assert calls == FORCED_CALLS["hermes"] and content == "Let me check."


# ---- tool_choice "required" / a named function: the answer is constrained to a call ----

SET_UNIT = {"type": "function", "function": {
    "name": "set_unit", "description": "Set the temperature unit",
    "parameters": {"type": "object", "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                                    "round": {"type": "boolean"}},
                   "required": ["unit", "round"]}}}
SET_LANG = {"type": "function", "function": {
    "name": "set_lang", "description": "Set the answer language",
    "parameters": {"type": "object", "properties": {"lang": {"enum": ["en", "fr", "de", "ja"]}},
                   "required": ["lang"], "additionalProperties": False}}}
OPENING = {"hermes": "<tool_call>\n", "mistral": "[TOOL_CALLS]", "llama3": ""}   # the answer's forced start


def check_forced(r, tools, allowed):
    """Every call names an allowed tool and its arguments validate (jsonschema) against that tool's parameters."""
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls", repr(ch.message.content)
    assert ch.message.tool_calls, ch
    params = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for c in ch.message.tool_calls:
        assert c.function.name in allowed
        jsonschema.validate(json.loads(c.function.arguments), params[c.function.name])
    return oai_calls(ch.message.tool_calls)


@pytest.mark.parametrize("fam", list(FORCED))
def test_tool_choice_forces_a_call(srv, models, fam):
    """The demo model was never trained on tools: with tool_choice "required" or a named function its answer is
    still a well-formed call in the family's format (grammar-constrained), whatever the seed; streamed or not."""
    cl = srv.openai()
    model = "demo-" + fam
    msgs = [{"role": "user", "content": "Once upon a time"}]
    named = {"type": "function", "function": {"name": "set_lang"}}
    for choice, tools, allowed in [("required", [SET_UNIT, SET_LANG], {"set_unit", "set_lang"}),
                                   (named, [SET_UNIT, SET_LANG], {"set_lang"})]:
        for seed in range(3):
            r = cl.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice=choice, seed=seed,
                                           temperature=1, max_tokens=400)
            got = check_forced(r, tools, allowed)
            if choice is named:
                assert len(got) == 1
        # the prompt is transformers' rendering, then the format's opening of a call
        want = hf_render(models[model], msgs, tools) + OPENING[fam]
        n = len(AutoTokenizer.from_pretrained(str(models[model]))(want, add_special_tokens=False)["input_ids"])
        assert r.usage.prompt_tokens == n
        # streamed: the same calls (same seed)
        calls = {}
        for chunk in cl.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice=choice, seed=2,
                                                temperature=1, max_tokens=400, stream=True):
            assert not chunk.choices[0].delta.content
            for tc in chunk.choices[0].delta.tool_calls or []:
                e = calls.setdefault(tc.index, ["", ""])
                e[0] += tc.function.name or ""
                e[1] += tc.function.arguments or ""
        assert [(calls[i][0], json.loads(calls[i][1])) for i in sorted(calls)] == got


@pytest.mark.badinput
def test_tool_choice_errors_name_the_field(srv):
    u = srv.url + "/v1/chat/completions"
    msgs = [{"role": "user", "content": "hi"}]
    bad_params = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}}}}
    for model, body, param, words in [
            ("demo-hermes", {"tool_choice": "required"}, "tool_choice", "needs 'tools'"),
            ("demo-hermes", {"tools": [SET_UNIT], "tool_choice": {"type": "function", "function": {"name": "g"}}},
             "tool_choice", "not among"),
            ("demo-hermes", {"tools": [SET_UNIT], "tool_choice": {"type": "function"}}, "tool_choice", "name"),
            ("demo-hermes", {"tools": [SET_UNIT], "tool_choice": "required", "response_format": {"type": "json_object"}},
             "response_format", "tool_choice"),
            ("demo-hermes", {"tools": [SET_UNIT, bad_params], "tool_choice": "required"},
             "tools[1].function.parameters", "pattern"),
            ("google-gemma-2-2b-it", {"tools": [SET_UNIT], "tool_choice": "required"}, "tool_choice", "format")]:
        # a model loads on its first request (slow under ASan, where this bad-input test also runs)
        r = httpx.post(u, json={"model": model, "messages": msgs, **body}, timeout=600)
        assert r.status_code == 400, body
        e = r.json()["error"]
        assert e["param"] == param and words in e["message"], (body, e)
    # a tool with an unsupported keyword is fine while the call is not forced
    r = httpx.post(u, json={"model": "demo-hermes", "messages": msgs, "tools": [bad_params], "max_tokens": 2},
                   timeout=600)
    assert r.status_code == 200, r.text


@pytest.mark.badinput
def test_bad_tools_name_the_field(srv):
    u = srv.url + "/v1/chat/completions"
    msgs = [{"role": "user", "content": "hi"}]
    for body, param, words in [
            ({"tools": {"type": "function"}}, "tools", "array"),
            ({"tools": [{"type": "retrieval"}]}, "tools[0]", "function"),
            ({"tools": [WEATHER, {"type": "function", "function": {"name": "has space"}}]}, "tools[1]", "name"),
            ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "tools[0]", "Schema"),
            ({"tools": TOOLS, "tool_choice": 3}, "tool_choice", "auto"),
            ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]},
             "messages[0].tool_calls[0]", "name"),
            ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}]},
             "messages[0].tool_calls[0]", "arguments")]:
        r = httpx.post(u, json={"model": "forced-hermes", "messages": msgs, **body})
        assert r.status_code == 400, body
        e = r.json()["error"]
        assert e["param"] == param and words in e["message"], (body, e)


def test_ignore_eos(srv):
    """llama-server's `ignore_eos`: the forced model answers T then EOS; with ignore_eos it never samples EOS
    and runs to max_tokens (bench/serve_bench.py relies on it for equal-length answers)."""
    cl = srv.openai()
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = cl.chat.completions.create(model="forced-hermes", messages=msgs, temperature=0, presence_penalty=1,
                                   max_tokens=6)
    assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens < 6
    r = cl.chat.completions.create(model="forced-hermes", messages=msgs, temperature=0, presence_penalty=1,
                                   max_tokens=6, extra_body={"ignore_eos": True})
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 6
