"""Chat templates: `silica template` against transformers' own renderer.

Oracle: transformers.utils.chat_template_utils.render_jinja_template (the
function apply_chat_template calls, with the sandboxed jinja2 environment
transformers builds), fed the messages after transformers'
_normalize_chat_messages, plus the special tokens apply_chat_template adds.
Every template in SHARED/templates/*.jinja and every chat_template in
SHARED/tokenizers/*/tokenizer_config.json is rendered for each conversation
below, with and without add_generation_prompt.  Where transformers raises,
silica must fail too (exit 2, one stderr line), with the same message when
the template raised it itself (raise_exception).
"""
import copy
import json
import os
import subprocess
from pathlib import Path

import jinja2
import pytest
from transformers.tokenization_utils_base import _normalize_chat_messages
from transformers.utils.chat_template_utils import render_jinja_template

from conftest import SHARED, SILICA, assert_clean_error, run_silica

TEMPLATES = SHARED / "templates"
TOKENIZERS = SHARED / "tokenizers"

# Templates silica does not claim to render, with the reason.  Everything
# else must match transformers on 100% of the cases.
UNSUPPORTED = {
}

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"}},
        "required": ["location"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Search the web \u2014 \u691c\u7d22 \U0001F50E",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string", "description": "What to look for"},
        "max_results": {"type": "integer", "description": "How many results", "default": 5},
        "safe": {"type": "boolean", "description": "Safe search"},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Filter tags"}},
        "required": ["query"]}}}
TOOLS = [WEATHER, SEARCH]


def call(id_, name, args):
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}


SYS = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "user": ([{"role": "user", "content": "Hello!"}], None, {}),
    "system_user": ([SYS, {"role": "user", "content": "What is 2+2?"}], None, {}),
    "multi_turn": ([SYS, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Tell me a joke."}], None, {}),
    "multi_turn_nosys": ([{"role": "user", "content": "One"}, {"role": "assistant", "content": "Two"},
                          {"role": "user", "content": "Three"}, {"role": "assistant", "content": "Four"},
                          {"role": "user", "content": "Five"}], None, {}),
    "ends_assistant": ([{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "Yes."}], None, {}),
    "unicode": ([SYS, {"role": "user", "content": "Caf\u00e9 \u00fcber \u4f60\u597d \u0645\u0631\u062d\u0628\u0627 "
                       "\U0001F468\u200d\U0001F469\u200d\U0001F467 e\u0301 \u2028 \U0001F600"},
                 {"role": "assistant", "content": "\u3053\u3093\u306b\u3061\u306f \u2014 \u00a1Hola! \u00a0nbsp"}], None, {}),
    "whitespace": ([{"role": "system", "content": "  padded system  \n"},
                    {"role": "user", "content": "\n\n  leading and trailing  \n\t"},
                    {"role": "assistant", "content": " a\r\nb\r\n "}, {"role": "user", "content": "\t"}], None, {}),
    "empty": ([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}, {"role": "user", "content": " "}],
              None, {}),
    "tricky_text": ([{"role": "user", "content": "{{ not a tag }} {% if %} <|im_start|> <s> </s> [INST] \"q\" 'a' \\ "
                      "{\"json\": [1, 2.5, null]}"}], None, {}),
    "tools_available": ([SYS, {"role": "user", "content": "What's the weather in Paris?"}], TOOLS, {}),
    "tools_nosys": ([{"role": "user", "content": "Search for cats."}], TOOLS, {}),
    "tool_call": ([SYS, {"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": "", "tool_calls": [call("call_1", "get_weather",
                                                                             {"location": "Paris, France", "unit": "celsius"})]},
                   {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
                    "content": "{\"temperature\": 22, \"condition\": \"sunny\"}"},
                   {"role": "assistant", "content": "It is 22\u00b0C and sunny in Paris."}], TOOLS, {}),
    "tool_call_then_user": ([{"role": "user", "content": "Weather in Oslo and Rome?"},
                             {"role": "assistant", "content": None, "tool_calls": [
                                 call("c1", "get_weather", {"location": "Oslo"}),
                                 call("c2", "get_weather", {"location": "Rome", "unit": "fahrenheit"})]},
                             {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "-3"},
                             {"role": "tool", "tool_call_id": "c2", "name": "get_weather", "content": "70"},
                             {"role": "assistant", "content": "Oslo -3, Rome 70."},
                             {"role": "user", "content": "Thanks!"}], TOOLS, {}),
    "tool_call_pending": ([{"role": "user", "content": "Find cats"},
                           {"role": "assistant", "tool_calls": [call("s1", "search", {"query": "cats", "max_results": 3,
                                                                                       "safe": True, "tags": ["pets"]})]},
                           {"role": "tool", "tool_call_id": "s1", "name": "search",
                            "content": "[{\"title\": \"Cats \u2764\", \"url\": \"https://x.y\"}]"}], TOOLS, {}),
    "tool_call_notools": ([{"role": "user", "content": "Weather?"},
                           {"role": "assistant", "content": "", "tool_calls": [call("c9", "get_weather", {"location": "Lima"})]},
                           {"role": "tool", "tool_call_id": "c9", "name": "get_weather", "content": "18"}], None, {}),
    "reasoning": ([{"role": "user", "content": "Think: 3*7?"},
                   {"role": "assistant", "content": "21", "reasoning_content": "3 times 7 is 21."},
                   {"role": "user", "content": "And 6*7?"}], None, {}),
    "thinking_off": ([SYS, {"role": "user", "content": "Quick answer: capital of France?"}], None,
                     {"enable_thinking": False}),
    "thinking_on": ([{"role": "user", "content": "Ponder this."}], None, {"enable_thinking": True}),
    "date_string": ([SYS, {"role": "user", "content": "What day is it?"}], TOOLS, {"date_string": "26 Jul 2024"}),
    "long": ([SYS] + [m for i in range(6) for m in ({"role": "user", "content": f"Question {i}?"},
                                                    {"role": "assistant", "content": f"Answer {i}."})]
             + [{"role": "user", "content": "Last one."}], None, {}),
    "double_user": ([{"role": "user", "content": "First."}, {"role": "user", "content": "Second."}], None, {}),
    "system_only": ([{"role": "system", "content": "Only a system prompt."}], None, {}),
    "content_parts": ([{"role": "user", "content": [{"type": "text", "text": "Describe this."},
                                                    {"type": "text", "text": "Briefly."}]}], None, {}),
    "json_content": ([{"role": "user", "content": "{\"a\": 1, \"b\": [true, false]}"},
                      {"role": "assistant", "content": "```json\n{\"ok\": true}\n```"}], None, {}),
}


def shared_templates():
    """(id, template text, special tokens) for every shared template."""
    out = []
    for p in sorted(TEMPLATES.glob("*.jinja")):
        out.append((p.stem, p, {"bos_token": "<s>", "eos_token": "</s>"}))
    for d in sorted(TOKENIZERS.iterdir()):
        cfg = d / "tokenizer_config.json"
        if not cfg.exists():
            continue
        c = json.loads(cfg.read_text())
        if not c.get("chat_template"):
            continue
        special = {}
        for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
            v = c.get(k)
            if isinstance(v, dict):
                v = v.get("content")
            if isinstance(v, str):
                special[k] = v
        out.append(("tokenizer-" + d.name, d, special))
    return out


def template_text(path):
    if path.is_dir():
        ct = json.loads((path / "tokenizer_config.json").read_text())["chat_template"]
        if isinstance(ct, list):
            ct = {t["name"]: t["template"] for t in ct}["default"]
        return ct
    return path.read_text()


def oracle(text, messages, tools, agp, kwargs):
    msgs = _normalize_chat_messages(copy.deepcopy(messages))
    try:
        out, _ = render_jinja_template(conversations=[msgs], tools=copy.deepcopy(tools), documents=None,
                                       chat_template=text, add_generation_prompt=agp, **kwargs)
        return True, out[0]
    except Exception as e:  # noqa: BLE001 - any failure of the template is an expected outcome
        return False, (type(e), str(e))


def silica_render(path, tmp_path, messages, tools, agp, kwargs, special_as_vars):
    mf = tmp_path / "messages.json"
    mf.write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
    args = ["template", path, "--messages", mf]
    if tools is not None:
        tf = tmp_path / "tools.json"
        tf.write_text(json.dumps(tools, ensure_ascii=False), encoding="utf-8")
        args += ["--tools", tf]
    if agp:
        args.append("--add-generation-prompt")
    allvars = dict(special_as_vars)
    allvars.update(kwargs)
    for k, v in allvars.items():
        args += ["--var", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    p = subprocess.run([str(SILICA), *map(str, args)], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), p.stderr.decode("utf-8", "replace")


def check_case(path, special, tmp_path, conv):
    """Returns None when silica matches transformers, else a description."""
    text = template_text(path)
    messages, tools, kwargs = CONVERSATIONS[conv]
    results = []
    for agp in (False, True):
        ok, expected = oracle(text, messages, tools, agp, {**special, **kwargs})
        rc, out, err = silica_render(path, tmp_path, messages, tools, agp, kwargs,
                                     special if not path.is_dir() else {})
        if ok:
            if rc != 0 or out != expected:
                results.append(f"agp={agp}: rc={rc} err={err.strip()[:300]!r}\n  expected={expected[:3000]!r}\n"
                               f"  got     ={out[:3000]!r}")
        else:
            etype, msg = expected
            lines = [l for l in err.splitlines() if l.strip()]
            if rc != 2 or len(lines) != 1:
                results.append(f"agp={agp}: transformers raised {etype.__name__}: {msg!r} but silica rc={rc} "
                               f"out={out[:200]!r} err={err[:300]!r}")
            elif etype is jinja2.exceptions.TemplateError and " ".join(msg.split("\n")) not in lines[0]:
                results.append(f"agp={agp}: raise_exception message differs: expected {msg!r}, got {lines[0]!r}")
    return "\n".join(results) if results else None


ALL = shared_templates()


@pytest.mark.parametrize("name,path,special", ALL, ids=[t[0] for t in ALL])
def test_template_matches_transformers(name, path, special, tmp_path):
    failures = {}
    for conv in CONVERSATIONS:
        r = check_case(path, special, tmp_path, conv)
        if r:
            failures[conv] = r
    total = len(CONVERSATIONS)
    rate = 100.0 * (total - len(failures)) / total
    print(f"{name}: {total - len(failures)}/{total} conversations identical ({rate:.0f}%)")
    if name in UNSUPPORTED:
        pytest.xfail(UNSUPPORTED[name])
    assert not failures, "\n".join(f"[{k}] {v}" for k, v in failures.items())


def test_coverage_numbers():
    assert len(CONVERSATIONS) >= 20
    assert len(ALL) >= 70
