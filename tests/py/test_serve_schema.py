"""Structured output of `silica serve` (grammar-constrained decoding) through
the real clients: the `openai` package's response_format json_schema /
json_object and the `ollama` package's format ("json" or a schema).  Every
answer is parsed with json.loads and judged by the real `jsonschema`
validator (Draft 2020-12).

Models: the demo model (byte-level BPE, 8k tokens) and a tiny random-weight
llama carrying the real Llama 3 tokenizer (128k tokens: the masks walk a
real vocabulary).  Test schemas bound strings and arrays (maxLength,
maxItems, enum) so these random-ish models finish well within max_tokens.
"""
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import openai
import pytest

from conftest import ROOT, run_silica
from hf_models import make_hf_model
from test_serve import Server

DEMO = ROOT / "models" / "demo"

NAME = {"type": "string", "maxLength": 8}
SCHEMAS = {
    "nested": {"type": "object", "properties": {
        "name": NAME, "age": {"type": "integer"},
        "address": {"type": "object", "properties": {"city": NAME, "zip": {"type": "integer"}},
                    "required": ["city", "zip"], "additionalProperties": False}},
        "required": ["name", "age", "address"], "additionalProperties": False},
    "bounded_array": {"type": "object", "properties": {
        "scores": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 4},
        "pair": {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "null"}], "items": False,
                 "minItems": 2}},
        "required": ["scores", "pair"], "additionalProperties": False},
    "enums": {"type": "object", "properties": {
        "color": {"enum": ["red", "green", "blue"]}, "size": {"enum": [1, 2, 3]}, "ok": {"const": True}},
        "required": ["color", "size", "ok"], "additionalProperties": False},
    "any_of": {"type": "object", "properties": {
        "v": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 4}, {"type": "null"}]},
        "w": {"type": ["boolean", "null"]}},
        "required": ["v", "w"], "additionalProperties": False},
    "defs": {"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "integer"}},
                              "required": ["x", "y"], "additionalProperties": False}},
             "type": "object", "properties": {"a": {"$ref": "#/$defs/pt"},
                                              "b": {"type": "array", "items": {"$ref": "#/$defs/pt"},
                                                    "maxItems": 2}},
             "required": ["a", "b"], "additionalProperties": False},
    "recursive": {"definitions": {"node": {"type": "object", "properties": {
        "id": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/definitions/node"},
                                            "maxItems": 2}},
        "required": ["id", "kids"], "additionalProperties": False}}, "$ref": "#/definitions/node"},
}

MSG = [{"role": "user", "content": "Answer in JSON."}]


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    d = tmp_path_factory.mktemp("schema") / "llama3"
    make_hf_model(d, "llama", weights_dtype="float32", dtype="float32", tokenizer="llama3", hidden=32, heads=2,
                  kv_heads=1, inter=64, vocab=128256, tied=True, seed=5)
    return d


@pytest.fixture(scope="module")
def srv(llama3):
    s = Server(DEMO, llama3, "--parallel", "8", "--ctx", "1024")
    yield s
    rc, err = s.stop()
    assert rc == 0, err


def fmt(name):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True}}


def check(schema, text, finish):
    assert finish == "stop", f"cut by max_tokens: {text!r}"
    value = json.loads(text)
    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
    return value


@pytest.mark.parametrize("model", ["demo", "llama3"])
@pytest.mark.parametrize("name", list(SCHEMAS))
def test_json_schema_chat(srv, model, name):
    """The answer parses and validates, greedy and sampled."""
    for kw in (dict(temperature=0), dict(temperature=0.9, seed=11)):
        r = srv.openai().chat.completions.create(model=model, messages=MSG, max_tokens=600, response_format=fmt(name),
                                                 **kw)
        check(SCHEMAS[name], r.choices[0].message.content, r.choices[0].finish_reason)


def test_json_schema_completions_and_stream(srv):
    """/v1/completions takes response_format too; a stream carries the same text."""
    kw = dict(model="demo", prompt="Data:", max_tokens=600, temperature=0.7, seed=3,
              extra_body={"response_format": fmt("nested")})
    r = srv.openai().completions.create(**kw)
    check(SCHEMAS["nested"], r.choices[0].text, r.choices[0].finish_reason)
    chunks = list(srv.openai().completions.create(stream=True, **kw))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text


def test_json_object(srv):
    """json_object: any JSON object; cut by max_tokens it says "length" as OpenAI does."""
    seen_stop = False
    for seed in range(6):
        r = srv.openai().chat.completions.create(model="demo", messages=MSG, max_tokens=300, temperature=0.8,
                                                 seed=seed, response_format={"type": "json_object"})
        c = r.choices[0]
        if c.finish_reason == "stop":
            assert isinstance(json.loads(c.message.content), dict)
            seen_stop = True
        else:
            assert c.finish_reason == "length" and r.usage.completion_tokens == 300
            assert c.message.content.lstrip().startswith("{")
    assert seen_stop


def test_ollama_format(srv):
    cl = srv.ollama()
    r = cl.chat(model="demo", messages=MSG, format=SCHEMAS["enums"], options={"num_predict": 400, "seed": 2})
    assert r.done_reason == "stop"
    jsonschema.validate(json.loads(r.message.content), SCHEMAS["enums"])
    r = cl.generate(model="llama3", prompt="JSON:", format=SCHEMAS["any_of"], options={"num_predict": 400})
    jsonschema.validate(json.loads(r.response), SCHEMAS["any_of"])
    for seed in range(6):
        r = cl.chat(model="demo", messages=MSG, format="json", options={"num_predict": 300, "seed": seed})
        if r.done_reason == "stop":
            assert isinstance(json.loads(r.message.content), dict)
            break
    else:
        pytest.fail("format=json never finished an object in 300 tokens")


def test_same_alone_and_among_others(srv):
    """A constrained request's tokens do not depend on what else is decoding."""
    def ask(name, seed, model="demo"):
        r = srv.openai().chat.completions.create(model=model, messages=MSG, max_tokens=400, temperature=0.9,
                                                 seed=seed, response_format=fmt(name), logprobs=True)
        return r.choices[0].message.content, [t.logprob for t in r.choices[0].logprobs.content]
    jobs = [(n, s) for n in SCHEMAS for s in (1, 2)]
    alone = [ask(n, s) for n, s in jobs]
    with ThreadPoolExecutor(len(jobs) + 4) as ex:
        noise = [ex.submit(srv.openai().chat.completions.create, model="demo", messages=MSG, max_tokens=60,
                           temperature=1.0, seed=k) for k in range(4)]
        together = list(ex.map(lambda j: ask(*j), jobs))
        for f in noise:
            f.result()
    assert together == alone
    for (n, _), (text, _) in zip(jobs, alone):
        jsonschema.validate(json.loads(text), SCHEMAS[n])


def test_equals_silica_run(srv, tmp_path):
    """The server's greedy constrained answer is `silica run --json-schema`'s."""
    f = tmp_path / "s.json"
    f.write_text(json.dumps(SCHEMAS["defs"]))
    want = run_silica("run", DEMO, "Data:", "-jf", f, "--temp", "0", "--max-tokens", "600", "--json",
                      check=True).json()
    r = srv.openai().completions.create(model="demo", prompt="Data:", max_tokens=600, temperature=0,
                                        extra_body={"response_format": fmt("defs")})
    assert r.choices[0].text == want["text"] and want["stop_reason"] == "grammar"
    jsonschema.validate(json.loads(want["text"]), SCHEMAS["defs"])
    inline = run_silica("run", DEMO, "Data:", "--json-schema", json.dumps(SCHEMAS["defs"]), "--temp", "0",
                        "--max-tokens", "600", "--json", check=True).json()
    assert inline["text"] == want["text"]


@pytest.mark.badinput
def test_bad_schemas_name_the_field(srv):
    u = srv.url + "/v1/chat/completions"
    cases = [
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^a"}}},
         "response_format.json_schema.schema", "'pattern'"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"properties": {"d": {"format": "date"}}}}},
         "response_format.json_schema.schema", "/properties/d: unsupported keyword 'format'"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/nope"}}},
         "response_format.json_schema.schema", "points to nothing"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "minimum": 0}}},
         "response_format.json_schema.schema", "'minimum'"),
        ({"type": "json_schema", "json_schema": {"name": 3}}, "response_format.json_schema", "must be a string"),
        ({"type": "xml"}, "response_format", "json_schema"),
    ]
    for rf, param, needle in cases:
        r = httpx.post(u, json={"model": "demo", "messages": MSG, "response_format": rf})
        assert r.status_code == 400, rf
        err = r.json()["error"]
        assert err["param"] == param and needle in err["message"], err
    with pytest.raises(openai.BadRequestError) as e:
        srv.openai().chat.completions.create(model="demo", messages=MSG, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "not": {}}}})
    assert "'not'" in str(e.value)
    # huge and deeply nested schemas: one-line refusals, the server lives on
    deep = {}
    for _ in range(300):
        deep = {"type": "object", "properties": {"a": deep}}
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(100)}}
    big_enum = {"enum": list(range(5000))}
    for schema, needle in [(deep, "nested deeper"), (wide, "more than 64 properties"), (big_enum, "more than 1000")]:
        r = httpx.post(u, json={"model": "demo", "messages": MSG, "response_format": {
            "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
        assert r.status_code == 400 and needle in r.json()["error"]["message"]
    r = httpx.post(srv.url + "/api/chat", json={"model": "demo", "messages": MSG, "format": "yaml"})
    assert r.status_code == 400 and "format" in r.text
    assert httpx.get(srv.url + "/health").status_code == 200


@pytest.mark.badinput
def test_run_bad_schema_one_line(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"type": "string", "pattern": "x"}')
    for args, needle in [(["-jf", f], f"{f}: schema /: unsupported keyword 'pattern'"),
                         (["--json-schema", '{"type": 1'], "--json-schema: schema: not valid JSON"),
                         (["--json-schema", str(tmp_path / "none.json")], "none.json"),
                         (["--grammar", "root ::= x"], "--grammar takes only 'json'")]:
        r = run_silica("run", DEMO, "x", *args)
        assert r.rc == 2 and needle in r.err and r.err.count("\n") <= 2 and r.out == ""
