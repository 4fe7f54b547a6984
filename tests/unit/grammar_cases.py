"""Writes tests/data/grammar/cases.json, the case list of test_grammar.c:
schemas with texts, each judged by the real `jsonschema` validator
(Draft 2020-12) after Python's json.loads.

"valid" is jsonschema's verdict; "accept" is what silica's recognizer must
answer.  They agree except on texts marked "subset": valid JSON that the
recognizer leaves out on purpose (grammar.h: extra whitespace, keys not
listed when additionalProperties is absent, ...).  The script refuses to
write a case where "accept" is true but jsonschema says invalid — the
recognizer must be sound.

Run: python3 tests/unit/grammar_cases.py   (needs jsonschema)
"""
import json
import sys
from pathlib import Path

import jsonschema

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5},
                                           "age": {"type": "integer"}},
          "required": ["name"], "additionalProperties": False}

CASES = [
    ({"type": "object"}, ['{}', '{"a":1}', '{"a":{"b":[1,2,{"c":null}]},"d":"x"}', '{ "a" : true }',
                          '{\n  "a": 1\n}'], ['[]', '{', '{"a"}', '{"a":}', '{"a":1,}', '"x"', '{}x',
                                                '{"a":01}', '{"a":1.}', '{"a":-}', '{"a":tru}', '{"a":"\x01"}']),
    (PERSON, ['{"name":"bob"}', '{"name":"bob","age":3}', '{"age":-12,"name":""}', '{"name":"\\u00e9t\\n"}',
              '{"name":"ééé"}'],
     ['{}', '{"age":3}', '{"name":"bobbie"}', '{"name":"bob","x":1}', '{"name":1}', '{"name":"b","age":1.5}']),
    ({"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
     ['[1]', '[1,2.5,-3e2]', '[0, 1]', '[1e+10]'], ['[]', '[1,2,3,4]', '["a"]', '[1,]', '[.5]', '[1e]', '[+1]']),
    ({"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False},
     ['["a",true]', '["a"]', '[]'], ['["a",true,1]', '[true]', '["a","b"]']),
    ({"enum": ["red", "green", 3, None, {"k": [1]}]}, ['"red"', '"green"', '3', 'null', '{"k":[1]}'],
     ['"blue"', '"re"', '30', '4', '{"k":[2]}', 'true']),
    ({"type": "string", "enum": ["a", "b", 1]}, ['"a"', '"b"'], ['1', '"c"']),
    ({"const": "x"}, ['"x"'], ['"y"', '"xx"']),
    ({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}, ['12', '"ab"', '-7'],
     ['1.5', '"abc"', 'null']),
    ({"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
                 "additionalProperties": False},
                {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"],
                 "additionalProperties": False}]},
     ['{"a":1}', '{"b":"x"}'], ['{"a":"x"}', '{"b":1}', '{}', '{"a":1,"b":"x"}']),
    ({"type": ["string", "null"]}, ['"s"', 'null'], ['1', 'nul', 'true']),
    ({"type": "integer", "nullable": True}, ['5'], ['5.5', '"5"', 'null']),
    ({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                          "next": {"anyOf": [{"$ref": "#/$defs/node"},
                                                                             {"type": "null"}]}},
                         "required": ["v", "next"], "additionalProperties": False}},
      "$ref": "#/$defs/node"},
     ['{"v":1,"next":null}', '{"v":1,"next":{"v":2,"next":null}}', '{"next":null,"v":0}'],
     ['{"v":1}', '{"v":1,"next":{"v":2}}', '{"v":1,"next":3}']),
    ({"definitions": {"c": {"enum": ["x", "y"]}}, "type": "object",
      "properties": {"c": {"$ref": "#/definitions/c"}}, "required": ["c"], "additionalProperties": False},
     ['{"c":"x"}'], ['{"c":"z"}', '{}']),
    ({"type": "object", "properties": {"a": {"type": "boolean"}}, "additionalProperties": {"type": "integer"}},
     ['{"a":true,"zz":3}', '{"q":1,"r":2}', '{}'], ['{"zz":"x"}', '{"a":1}']),
    ({"type": "number"}, ['0', '-0', '1.25', '2E-3', '123'], ['01', '1.', '-', '1e', 'NaN', '"1"']),
    ({"type": "boolean"}, ['true', 'false'], ['tru', 'True', '1']),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ['"ab"', '"abc"', '"\\"\\\\"', '"日本"'],
     ['"a"', '"abcd"', '""']),
    ({"type": "object", "properties": {"q\"x": {"type": "null"}, "é": {"const": 1}}, "additionalProperties": False},
     ['{"q\\"x":null}', '{"é":1}', '{}'], ['{"q\\"x":1}', '{"e":1}']),
]

# valid JSON the recognizer leaves out on purpose (grammar.h's canonical subset)
SUBSET = [
    ({"type": "object"}, ['{  "a":1}', '{"a":1}\n', '{} ', '  {}', '{"a":1e100}', '{"a":12345678901234567}']),
    (PERSON, ['{"nam\\u0065":"x"}', '{"name":"\\ud800"}', '{"name":"b","name":"c"}']),
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, ['{"a":1,"b":2}']),
    ({"type": "array", "prefixItems": [{"type": "integer"}]}, ['[1,2]']),
    ({"enum": [{"k": 1}]}, ['{ "k": 1 }']),
    ({"type": "integer"}, ['1.0']),
    ({"type": "object", "properties": {"q\"x": {"type": "null"}}, "additionalProperties": False},
     ['{"q\\u0022x":null}']),
]


def no_constant(name):
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def verdict(schema, text):
    try:
        value = json.loads(text, parse_constant=no_constant)
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def main():
    out = []
    for schema, good, bad in CASES:
        texts = []
        for t in good + bad:
            valid = verdict(schema, t)
            if (t in good) != valid:
                sys.exit(f"case list wrong: {t!r} under {json.dumps(schema)}: jsonschema says {valid}")
            texts.append({"text": t, "valid": valid, "accept": valid})
        out.append({"schema": schema, "texts": texts})
    for schema, texts in SUBSET:
        for t in texts:
            if not verdict(schema, t):
                sys.exit(f"subset case {t!r} is not valid under {json.dumps(schema)}")
        out.append({"schema": schema, "texts": [{"text": t, "valid": True, "accept": False, "subset": True}
                                                 for t in texts]})
    dst = Path(__file__).resolve().parents[1] / "data" / "grammar" / "cases.json"
    dst.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"{dst}: {sum(len(c['texts']) for c in out)} texts under {len(out)} schemas")


if __name__ == "__main__":
    main()
