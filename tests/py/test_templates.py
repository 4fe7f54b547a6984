"""Chat templates: `silica template` against transformers' own renderer.

Oracle: transformers.utils.chat_template_utils.render_jinja_template (the
function apply_chat_template calls, with the sandboxed jinja2 environment
transformers builds), fed the messages after transformers'
_normalize_chat_messages, plus the special tokens apply_chat_template adds.
Every template in tests/data/templates/*.jinja and every chat_template in
tests/data/tokenizers/*/tokenizer_config.json.gz is rendered for each conversation
below, with and without add_generation_prompt.  Where transformers raises,
silica must fail too (exit 2, one stderr line), with the same message when
the template raised it itself (raise_exception).
"""
import atexit
import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import jinja2
import pytest
from transformers.tokenization_utils_base import _normalize_chat_messages
from transformers.utils.chat_template_utils import render_jinja_template

from conftest import (SILICA, TEMPLATES, assert_clean_error, run_silica, tokenizer_config, tokenizer_names,
                      write_tokenizer_files)

# tokenizer_config.json of each committed tokenizer that has a chat template,
# decompressed into its own folder (what `silica template DIR` reads)
_CONFIG_ROOT = Path(tempfile.mkdtemp(prefix="silica-tokcfg-"))
atexit.register(shutil.rmtree, _CONFIG_ROOT, True)


def _config_dir(name):
    d = _CONFIG_ROOT / name
    if not d.exists():
        d.mkdir()
        (d / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(name), ensure_ascii=False),
                                                 encoding="utf-8")
    return d


TEMPLATED_TOKENIZERS = [n for n in tokenizer_names() if tokenizer_config(n).get("chat_template")]

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
    for name in TEMPLATED_TOKENIZERS:
        d = _config_dir(name)
        c = tokenizer_config(name)
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


# ---------------------------------------------------------------------------
# Jinja2 semantics, snippet by snippet, against the same transformers machinery.
# Each case: (template, context).  Errors must match in kind; messages must
# match exactly (silica copies Python's / jinja2's wording).
CTX = {"s": "Hello, World", "n": 7, "f": 2.5, "l": [3, 1, 2], "d": {"b": 2, "a": 1, "c": {"x": [1, 2]}},
       "e": "", "u": "h\u00e9llo \U0001F600", "t": True, "z": None,
       "msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}]}
SNIPPETS = [
    # whitespace control, trim_blocks / lstrip_blocks, comments, raw
    "a\n  {% if t %}\n  yes\n  {% endif %}\nb\n",
    "a  {%- if t -%}  x  {%- endif -%}  b",
    "  {%+ if t %}x{% endif +%}\ny",
    "{# comment #}\nline\n  {#- c2 -#}  end",
    "{{ 'x' }}\n{{- 'y' -}}\n  z  {{- 'w' }}\n",
    "{% raw %}{{ not }} {% tags %}{% endraw %}\nafter",
    "text\r\nwith crlf\r\n{% if t %}\r\nin\r\n{% endif %}\r\n",
    "{%- for x in l %}\n  - {{ x }}\n{%- endfor %}\n",
    "{% for x in l %}{{ x }}{% else %}none{% endfor %}|{% for x in [] %}{{ x }}{% else %}empty{% endfor %}",
    # literals, escapes, operators
    "{{ 'a\\tb\\n\\u00e9\\x41\\\\' }}|{{ \"q'\" }}|{{ 'ab' 'cd' }}",
    "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 6 / 2 }}",
    "{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0e-7 }} {{ 3.0 }} {{ -0.0 }} {{ 2 ** -1 }} {{ 10 / 4 }}",
    "{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1, 2] + [3] }} {{ 'a' ~ 1 ~ none ~ true }} {{ s + '!' }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ true == 1 }} {{ none == none }}",
    "{{ not t }} {{ t and 'x' }} {{ z or 'dflt' }} {{ e or n }} {{ 0 and 1 }} {{ 'a' if t else 'b' }} {{ 'a' if z }}",
    "{{ 'ell' in s }} {{ 2 in l }} {{ 'a' in d }} {{ 'zz' not in d }} {{ 9 not in l }}",
    "{{ -n }} {{ +f }} {{ -(1 + 2) }} {{ n|abs }} {{ -3|abs }}",
    # output of non-strings
    "{{ l }} {{ d }} {{ z }} {{ t }} {{ f }} {{ (1, 'a') }} {{ (1,) }} {{ [none, true, 'it\\'s', \"q\\\"\"] }}",
    "{{ u }} {{ ['\\n', '\\t', '\u00e9', '\\x7f', '\\u200b'] }}",
    # attribute / item access, undefined
    "{{ d.a }} {{ d['b'] }} {{ d.c.x[1] }} {{ msgs[1].content }} {{ msgs[-1]['role'] }} {{ l[0] }} {{ s[0] }} {{ s[-1] }}",
    "[{{ missing }}] [{{ d.nope }}] [{{ l[10] }}] [{{ z.x }}] [{{ s.nope }}]",
    "{{ missing is defined }} {{ missing is undefined }} {{ d.nope is defined }} {{ d.a is defined }} {{ z is none }}",
    "{{ missing | default('dv') }} {{ e | default('dv') }} {{ e | default('dv', true) }} {{ z | default('dv') }} {{ missing|d }}",
    "{{ missing | length }} {% for x in missing %}x{% endfor %}{{ missing ~ 'a' }}|{{ missing == missing }}",
    # slicing
    "{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ s[7:] }} {{ s[::2] }} {{ u[::-1] }} {{ l[5:] }} {{ s[-5:-1] }}",
    # string filters and methods
    "{{ '  x y  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ s | lower }}|{{ s | upper }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}",
    "{{ s | replace('l', 'L') }} {{ s | replace('l', 'L', 2) }} {{ 'abc' | replace('', '-') }} {{ s | length }} {{ u | length }}",
    "{{ s.split(', ') }} {{ '  a  b \\n c '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'a b c'.split(none, 1) }}",
    "{{ '  pad  '.strip() }}|{{ '  pad  '.lstrip() }}|{{ '  pad  '.rstrip() }}|{{ 'xxpadxx'.strip('x') }}|{{ '\\n\\tz '.strip() }}",
    "{{ s.startswith('Hell') }} {{ s.endswith('ld') }} {{ s.startswith(('x', 'H')) }} {{ s.upper() }} {{ s.lower() }} {{ s.title() }}",
    "{{ s.replace('o', '0') }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }} {{ s.index('W') }}",
    "{{ '{} and {}'.format(1, 'two') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{x}!'.format(x=3) }} {{ '{{}}'.format() }}",
    "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'abc'.removeprefix('a') }} {{ 'abc'.removesuffix('c') }} {{ '42'.isdigit() }} {{ 'ab'.isalpha() }}",
    "{{ '%s=%d' % ('x', 3) }} {{ '%s' % 'one' }} {{ '100%%' % () }}",
    "{{ s | string }} {{ n | string }} {{ l | string }} {{ 5 | float }} {{ '3.5' | float }} {{ 'x' | float }} {{ '12' | int }} {{ '3.9' | int }} {{ 4.7 | int }} {{ 'z' | int(9) }}",
    "{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.567 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }} {{ 7 | round }}",
    "{{ 'line1\\nline2\\n\\nline4' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}",
    # list filters
    "{{ l | first }} {{ l | last }} {{ l | sort }} {{ l | sort(reverse=true) }} {{ l | join(',') }} {{ l | list }} {{ s | list | length }}",
    "{{ l | min }} {{ l | max }} {{ l | sum }} {{ ['b', 'A', 'a'] | unique | list }} {{ ['b', 'A', 'c'] | sort }} {{ l | reverse | list }} {{ 'abc' | reverse }}",
    "{{ msgs | map(attribute='role') | join(',') }} {{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
    "{{ msgs | rejectattr('role', 'eq', 'user') | list | length }} {{ l | select('odd') | list }} {{ l | reject('even') | list }} {{ msgs | selectattr('content') | list | length }}",
    "{{ [1, 2] | map('string') | join }} {{ ['a', 'B'] | map('upper') | list }} {{ msgs | map(attribute='nope', default='-') | join }}",
    "{{ d | dictsort }} {{ d | dictsort(reverse=true) }} {{ {'b': 1, 'a': 2} | dictsort(by='value') }} {{ d | items | list }} {{ d.items() | list }}",
    "{{ d.keys() | list }} {{ d.values() | list | length }} {{ d.get('a') }} {{ d.get('q') }} {{ d.get('q', 5) }} {{ d | length }}",
    "{{ msgs | selectattr('role', 'in', ['user', 'system']) | list | length }} {{ [3, 1] | sort | first }} {{ msgs | sort(attribute='role') | map(attribute='content') | join }}",
    "{{ l | select | list }} {{ [0, 1, '', 'a', none] | select | list }} {{ msgs|selectattr('role', 'ne', 'user')|list|count }}",
    # tests
    "{{ s is string }} {{ n is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ d is mapping }} {{ l is sequence }} {{ l is iterable }} {{ s is sequence }}",
    "{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ t is true }} {{ z is false }} {{ n is sameas 7 }} {{ 'ab' is lower }} {{ 'AB' is upper }}",
    "{{ n is gt 3 }} {{ n is lt(3) }} {{ n is ge 7 }} {{ n is le 6 }} {{ 1 is in l }} {{ n is not none }} {{ t is not false }} {{ d is not mapping }}",
    # tojson with transformers' options
    "{{ d | tojson }} {{ l | tojson }} {{ u | tojson }} {{ 'a\"b\\\\c\\n<>&' | tojson }} {{ z | tojson }} {{ f | tojson }} {{ t | tojson }}",
    "{{ d | tojson(indent=2) }}\n{{ d | tojson(sort_keys=true) }}\n{{ d | tojson(separators=(',', ':')) }}\n{{ u | tojson(ensure_ascii=true) }}",
    "{{ {'k': [1, {'z': none}], 'e': [], 'o': {}} | tojson(indent=4) }}\n{{ d | tojson(indent='\\t', sort_keys=true) }}",
    # loops
    "{% for m in msgs %}{{ loop.index }}/{{ loop.length }}:{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.revindex }} {% endfor %}",
    "{% for m in msgs %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if loop.nextitem else '.' }} {% endfor %}",
    "{% for m in msgs if m.role == 'user' %}{{ loop.index }}{{ m.content }}{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k in d %}{{ k }}{% endfor %} {% for ch in 'ab' %}[{{ ch }}]{% endfor %}",
    "{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.depth }}{{ a }}{{ b }}{{ loop.cycle('+', '-') }} {% endfor %}{% endfor %}",
    "{% for i in range(3) %}{{ i }}{% endfor %} {{ range(2, 10, 3) | list }} {{ range(5, 0, -2) | list }}",
    "{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }} {% endfor %}",
    # set, namespace, scoping
    "{% set x = 1 %}{% for i in l %}{% set x = x + i %}{% endfor %}{{ x }}",
    "{% set ns = namespace(x=0, s='') %}{% for i in l %}{% set ns.x = ns.x + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.x }} {{ ns.s }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t2 = (3, 4) %}{{ t2[1] }} {% set block %}inner {{ n }}{% endset %}[{{ block }}]",
    "{% set up | upper %}shout {{ s }}{% endset %}{{ up }}|{% filter upper %}loud {{ n }}{% endfilter %}",
    "{% set ns = namespace() %}{% set ns.v = 'set' %}{{ ns.v }} {{ ns.missing is defined }}",
    "{% if t %}{% set inner = 'visible' %}{% endif %}{{ inner }}",
    # macros
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Al') }} {{ greet('Bo', '?') }} {{ greet(punct='.', name='Cy') }}",
    "{% macro m(a, b) %}[{{ a }}|{{ b }}|{{ b is defined }}]{% endmacro %}{{ m(1) }}",
    "{% macro outer() %}<{{ caller() }}>{% endmacro %}{% call outer() %}called {{ n }}{% endcall %}",
    "{% macro r(k) %}{% if k > 0 %}{{ k }}{{ r(k - 1) }}{% endif %}{% endmacro %}{{ r(4) }}",
    "{% set g = 'global' %}{% macro show() %}{{ g }}{% endmacro %}{{ show() }}",
    "{% macro render(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}:{{ render(x) }},{% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(d) }}",
    # dict / list literals and functions
    "{{ {'a': 1, 'b': [1, 2]} }} {{ dict(a=1, b='x') }} {{ dict({'q': 1}, r=2) }} {{ [1, 'a', [none]] }} {{ {} }} {{ [] }} {{ () }}",
    "{{ namespace(a=1).a }} {{ (d | dictsort)[0][1] }} {{ ([1, 2, 3] | sum) / 2 }}",
    "{{ msgs[0].content.upper() ~ msgs[1]['content'].lower() }}",
    "{{ strftime_now('%Y') | length }}",
    "{{ raise_exception('Custom failure: ' ~ n) }}",
    # markup
    "{{ 'a<b'|safe + '<tag>' }} {{ '<x>' | e }} {{ '<x>' | escape | safe }} {{ ('q' | safe) ~ '<' }}",
    # generators and views
    "{{ l | select('odd') | length }}",
    "{{ l | map('string') | tojson }}",
    "{% set g = l | select %}{{ g | list }}{{ g | list }}",
    "{{ d.items() }} {{ d.keys() }} {{ d.values() | length }} {{ 'b' in d.keys() }}",
    "{{ (l | select) is sequence }} {% if l | select('gt', 10) %}truthy{% endif %}",
    # scoping: each loop iteration starts afresh; macros see the template's variables when called
    "{% for i in [1,2] %}{% if i == 1 %}{% set x = 'a' %}{% endif %}[{{ x }}]{% endfor %}",
    "{% set x = 'outer' %}{% for i in [1,2] %}[{{ x }}]{% set x = 'in' ~ i %}[{{ x }}]{% endfor %}[{{ x }}]",
    "{% macro m() %}{{ late }}{% endmacro %}{% set late = 'L' %}{{ m() }}",
    "{% macro m() %}{{ early }}{% endmacro %}{{ m() }}{% set early = 'E' %}{{ m() }}",
    "{% set x = 1 %}{% macro m() %}{% set x = 2 %}{{ x }}{% endmacro %}{{ m() }}{{ x }}",
    "{% for a in [1] %}{% macro m() %}{{ a }}{% endmacro %}{{ m() }}{% endfor %}",
    "{%- raw -%}  {{ x }}  {%- endraw -%}  after",
    "{% for m in [1, 1, 2, 3, 3] %}{{ loop.changed(m) }}{% endfor %}",
    "{{ 'Hello World'.title() }} {{ 'hello-world foo_bar'|title }} {{ \"they're\"|title }} {{ \"they're\".title() }}",
    "{{ [1, 2, 3] | batch(2) | list }} {{ [1, 2, 3] | batch(2, 0) | list }} {{ '%s-%03d' | format('a', 7) }}",
    "{{ '%5.2f|%-4d|%04d|%x|%.3s|%5s|%e|%g|%r|%c' % (3.14159, 7, 42, 255, 'abcdef', 'ab', 12345.678, 0.0001, 'q', 65) }}",
    "{% set x %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}{{ x|length }}",
    "{{ (1, 2) == [1, 2] }} {{ 1 in (1, 2) }} {{ {'a': 1} == {'a': 1.0} }}",
    "{{ 'abc'[5:10] }}|{{ [1, 2, 3][-10:] }}|{{ 'abc'[-1:-3:-1] }}",
    "{{ 0.000012345 }} {{ 123456789012345680.0 }} {{ 1 / 3 }} {{ 100.0 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 10 // 3.0 }} {{ -7 % 2.5 }}",
    "{{ true + 1 }} {{ [true, 1] | sum }} {{ 5 | round(-1) }} {{ 15.5 | round }} {{ -2.5 | round }}",
    "{{ 'x\\ny' | indent(2) }}|{{ 'x\\r\\ny' | indent(2) }}",
    "{{ 3 is number }}{{ true is number }}{{ 3.0 is integer }}{{ '3' is number }}",
    "{{ '\u00e9t\u00e9 \u00df'|upper }} {{ '\u00c9COLE \u0391\u0392'|lower }} {{ '\u043f\u0440\u0438\u0432\u0435\u0442'|capitalize }}",
    "{{ [[1, 2], [3]] | sum(start=[]) }} {{ [1.5, 2] | sum }} {{ -1 ** 2 }} {{ (-1) ** 2 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }}",
    "{{ 1 ~ 2 + 3 }} {{ 'a' ~ 'b' == 'ab' }} {{ 1 < 2 == true }} {{ not 1 == 2 }} {{ not 'a' in 'abc' }} {{ - 2|abs }}",
    "{{ [1, 2][true] }} {{ 'ab'[false] }} {{ ('a', 'b')|join }} {{ ('a',) + ('b',) }} {{ 'a' ~ {'x': 'y'} ~ ('t',) }}",
    "{{ 'x</think>\\n\\ny'.split('</think>')[-1].lstrip('\\n') }} {{ {'b': 1, 'a': 2}|dictsort|first|last }}",
    "{{ 5 is divisibleby 0 }}",
    "{{ 5 % 0 }}",
    "{{ 'x' in none }}",
    # errors that must match
    "{{ missing.attr }}",
    "{{ d.nope.deeper }}",
    "{{ 'a' + 1 }}",
    "{{ 1 + 'a' }}",
    "{{ l + 'a' }}",
    "{{ z | length }}",
    "{{ 1 / 0 }}",
    "{{ 5 // 0 }}",
    "{{ 'a' < 1 }}",
    "{{ missing + 1 }}",
    "{{ l.append(4) }}",
    "{{ d.update({'x': 1}) }}",
    "{{ d.pop('a') }}",
    "{% set ns = namespace(_x=1) %}",
    "{% set ns = namespace() %}{% set ns._y = 2 %}",
    "{% for x in n %}{% endfor %}",
    "{{ range(200000) | length }}",
    "{{ s.__class__ }}",
    "{{ l | nosuchfilter }}",
    "{% if t %}{{ l | nosuchfilter }}{% endif %}",
    "{% if f %}{{ l is nosuchtest }}{% endif %}",
    "{{ l is nosuchtest }}",
    "{% if %}",
    "{% for x in l %}",
    "{% endif %}",
    "{{ 'unterminated }}",
    "{% include 'x.html' %}",
    "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
    "{% set a, b = [1, 2, 3] %}",
    "{{ msgs | items | list }}",
    "{{ 'x' if false }}{{ ('x' if false) + 'y' }}",
    "{{ '{0}'.format() }}",
    "{{ 'a,b'.split('') }}",
    "{{ l[1.5] }}",
    "{{ s['x'] }}",
    "{{ undefined_fn() }}",
    "{{ n() }}",
    "{{ [1, 2] | sum(start='a') }}",
    "{{ [3, 'a'] | sort }}",
    "{{ 'x' | tojson(indent=none, sort_keys=true) }}{{ {1: 'a'} | tojson }}{{ {none: 1, true: 2, 1.5: 3} | tojson }}",
]


# Where silica deliberately words the error differently: outside the subset.
MESSAGE_MAY_DIFFER = {
    "{% include 'x.html' %}": "templates cannot load other templates: silica names the construct",
}


def oracle_snippet(src, ctx):
    try:
        out, _ = render_jinja_template(conversations=[[]], chat_template=src, **copy.deepcopy(ctx))
        return True, out[0]
    except Exception as e:  # noqa: BLE001
        return False, (type(e), str(e))


@pytest.mark.parametrize("idx", range(len(SNIPPETS)))
def test_jinja_semantics(idx, tmp_path):
    src = SNIPPETS[idx]
    ok, expected = oracle_snippet(src, CTX)
    tf = tmp_path / "t.jinja"
    tf.write_bytes(src.encode("utf-8"))
    mf = tmp_path / "m.json"
    mf.write_text("[]")
    args = ["template", tf, "--messages", mf]
    for k, v in CTX.items():
        args += ["--var", f"{k}={json.dumps(v)}"]
    r = run_silica(*args)
    if ok:
        assert r.rc == 0, f"silica failed: {r.err!r}; expected {expected!r}"
        assert r.out == expected
    else:
        etype, msg = expected
        assert_clean_error(r)
        want = " ".join(msg.split("\n"))
        if src in MESSAGE_MAY_DIFFER:
            assert "unsupported construct" in r.err
            return
        assert want in r.err, f"transformers raised {etype.__name__}: {msg!r}; silica said {r.err!r}"


# ---------------------------------------------------------------------------
# Model directories: where the template comes from, named templates, tokens.
def write_model(tmp_path, config=None, jinja=None, ctjson=None, stm=None):
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    if config is not None:
        (d / "tokenizer_config.json").write_text(json.dumps(config))
    if jinja is not None:
        (d / "chat_template.jinja").write_text(jinja)
    if ctjson is not None:
        (d / "chat_template.json").write_text(json.dumps(ctjson))
    if stm is not None:
        (d / "special_tokens_map.json").write_text(json.dumps(stm))
    return d


def write_msgs(tmp_path, msgs=None):
    f = tmp_path / "msgs.json"
    f.write_text(json.dumps(msgs if msgs is not None else [{"role": "user", "content": "hi"}]))
    return f


def test_template_sources_and_precedence(tmp_path):
    m = write_msgs(tmp_path)
    d = write_model(tmp_path, config={"chat_template": "CFG{{ bos_token }}", "bos_token": {"content": "<B>", "lstrip": False},
                                      "eos_token": "</E>"})
    assert run_silica("template", d, "--messages", m, check=True).out == "CFG<B>"
    write_model(tmp_path, ctjson={"chat_template": "JSON{{ eos_token }}"})
    assert run_silica("template", d, "--messages", m, check=True).out == "JSON</E>"
    write_model(tmp_path, jinja="JINJA{{ messages[0].content }}\n")
    assert run_silica("template", d, "--messages", m, check=True).out == "JINJAhi"
    f = tmp_path / "plain.jinja"
    f.write_text("{{ bos_token }}|{{ add_generation_prompt }}|{{ x }}")
    assert run_silica("template", f, "--messages", m, "--add-generation-prompt", "--var", "x=[1, 2]",
                      check=True).out == "|True|[1, 2]"


def test_named_templates(tmp_path):
    m = write_msgs(tmp_path)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    d = write_model(tmp_path, config={"chat_template": [{"name": "default", "template": "D"},
                                                        {"name": "tool_use", "template": "T{{ tools | length }}"},
                                                        {"name": "rag", "template": "R"}]})
    assert run_silica("template", d, "--messages", m, check=True).out == "D"
    assert run_silica("template", d, "--messages", m, "--tools", tools, check=True).out == "T2"
    assert run_silica("template", d, "--messages", m, "--template", "rag", check=True).out == "R"
    assert_clean_error(run_silica("template", d, "--messages", m, "--template", "nope"), "nope")


def test_messages_normalised_like_transformers(tmp_path):
    msgs = [{"role": "user", "content": "q", "extra": None},
            {"role": "assistant", "content": "a", "reasoning": "r", "tool_calls": None}]
    m = write_msgs(tmp_path, msgs)
    f = tmp_path / "t.jinja"
    f.write_text("{% for m in messages %}{{ m | tojson }};{% endfor %}")
    expected = oracle(f.read_text(), msgs, None, False, {})[1]
    assert run_silica("template", f, "--messages", m, check=True).out == expected


# ---------------------------------------------------------------------------
# Bad input: exit 2, one line naming the file and the problem.
def test_bad_template_syntax_names_line(tmp_path):
    m = write_msgs(tmp_path)
    f = tmp_path / "bad.jinja"
    f.write_text("line1\n{% if x %}\nline3\n{{ 1 + }}\n{% endif %}")
    assert_clean_error(run_silica("template", f, "--messages", m), "bad.jinja:4", "Expected an expression")
    f.write_text("ok\n\n{% for x in y %}")
    assert_clean_error(run_silica("template", f, "--messages", m), "bad.jinja:3", "endfor")
    f.write_text("{% include 'other.jinja' %}")
    assert_clean_error(run_silica("template", f, "--messages", m), "bad.jinja:1", "unsupported construct", "include")
    f.write_text("{% for x in y recursive %}{% endfor %}")
    assert_clean_error(run_silica("template", f, "--messages", m), "unsupported construct", "recursive")
    f.write_text("a\n{{ x | nosuch }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "bad.jinja:2", "No filter named 'nosuch'")
    f.write_text("{% frobnicate %}")
    assert_clean_error(run_silica("template", f, "--messages", m), "unknown tag 'frobnicate'")
    f.write_text("{# never closed")
    assert_clean_error(run_silica("template", f, "--messages", m), "comment")


def test_undefined_and_raise(tmp_path):
    m = write_msgs(tmp_path)
    f = tmp_path / "u.jinja"
    f.write_text("\n\n{{ messages[0].nope.deeper }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "u.jinja:3", "'dict object' has no attribute 'nope'")
    f.write_text("{{ raise_exception('System role not supported') }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "System role not supported")


def test_runaway_templates_are_bounded(tmp_path):
    m = write_msgs(tmp_path)
    f = tmp_path / "r.jinja"
    f.write_text("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    assert_clean_error(run_silica("template", f, "--messages", m, timeout=60), "loop iterations")
    f.write_text("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}")
    assert_clean_error(run_silica("template", f, "--messages", m, timeout=60), "nested deeper")
    f.write_text("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert_clean_error(run_silica("template", f, "--messages", m, timeout=60), "output exceeds")
    f.write_text("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
    assert_clean_error(run_silica("template", f, "--messages", m, timeout=60))
    f.write_text("{{ " + "(" * 500 + "1" + ")" * 500 + " }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "nested too deeply")
    f.write_text("{{ 'x'" + "|trim" * 5000 + " }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "nested too deeply")
    f.write_text("{{ 1" + " + 1" * 5000 + " }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "nested too deeply")
    f.write_text("{% set ns = namespace(x=[], y=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}"
                 "{% set ns.y = [ns.y] %}{% endfor %}{{ ns.x == ns.x }}{{ ns.x < ns.y }}")
    assert_clean_error(run_silica("template", f, "--messages", m), "recursion")


@pytest.mark.parametrize("content,needle", [
    ("", "not valid JSON"),
    ("{\"messages\": ", "not valid JSON"),
    ("{\"role\": \"user\"}", "messages"),
    ("[1, 2]", "message 0"),
    ("\"just a string\"", "messages"),
])
def test_bad_messages_file(tmp_path, content, needle):
    f = tmp_path / "t.jinja"
    f.write_text("x")
    m = tmp_path / "m.json"
    m.write_text(content)
    assert_clean_error(run_silica("template", f, "--messages", m), "m.json", needle)


def test_bad_model_and_args(tmp_path):
    m = write_msgs(tmp_path)
    assert_clean_error(run_silica("template", tmp_path / "missing", "--messages", m), "missing")
    d = write_model(tmp_path, config={"bos_token": "<s>"})
    assert_clean_error(run_silica("template", d, "--messages", m), "no chat template")
    (d / "tokenizer_config.json").write_text("{broken")
    assert_clean_error(run_silica("template", d, "--messages", m), "tokenizer_config.json", "not valid JSON")
    (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": 42}))
    assert_clean_error(run_silica("template", d, "--messages", m), "chat_template")
    f = tmp_path / "t.jinja"
    f.write_text("x")
    assert_clean_error(run_silica("template", f))
    assert_clean_error(run_silica("template", f, "--messages", m, "--var", "novalue"), "--var")
    assert_clean_error(run_silica("template", f, "--messages", m, "--bogus"), "--bogus")
    tools = tmp_path / "tools.json"
    tools.write_text("{\"not\": \"a list\"}")
    assert_clean_error(run_silica("template", f, "--messages", m, "--tools", tools), "tools.json", "list")


# ---------------------------------------------------------------------------
# End to end: the real tokenizer's apply_chat_template (special tokens as the
# loaded tokenizer sees them) against `silica template MODEL_DIR`.
@pytest.mark.parametrize("model", TEMPLATED_TOKENIZERS)
def test_apply_chat_template_end_to_end(model, tmp_path):
    from transformers import AutoTokenizer
    d = tmp_path / model
    d.mkdir()
    write_tokenizer_files(model, d)
    tok = AutoTokenizer.from_pretrained(str(d))
    bad = []
    for conv, (messages, tools, kwargs) in CONVERSATIONS.items():
        for agp in (False, True):
            try:
                expected = tok.apply_chat_template(copy.deepcopy(messages), tools=copy.deepcopy(tools), tokenize=False,
                                                   add_generation_prompt=agp, **kwargs)
            except Exception as e:  # noqa: BLE001
                expected = e
            rc, out, err = silica_render(d, tmp_path, messages, tools, agp, kwargs, {})
            if isinstance(expected, Exception):
                if rc != 2:
                    bad.append(f"{conv} agp={agp}: transformers raised {expected!r}, silica rc={rc}")
            elif rc != 0 or out != expected:
                bad.append(f"{conv} agp={agp}: rc={rc} err={err!r}\n expected={expected!r}\n got={out!r}")
    assert not bad, "\n".join(bad)
