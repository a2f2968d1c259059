#!/usr/bin/env python3
# validate.py: the independent JSON-schema check of the client tests (structured.mjs).
# Reads a JSON array of {"name", "schema", "text"} on stdin: each text must parse as
# JSON and validate against its schema with Python's jsonschema (Draft 2020-12, with
# format checks; time and date-time also parsed here, since jsonschema skips them
# without optional packages). Prints one line per failure and a summary; exit 1 if any.
import datetime, json, re, sys
import jsonschema

TIME = re.compile(r'^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$')

def check_formats(schema, value):
    if isinstance(schema, dict):
        if schema.get("format") == "time":
            assert TIME.match(value), "time %r" % value
        if schema.get("format") == "date-time":
            d, t = value.split("T")
            datetime.date.fromisoformat(d)
            assert TIME.match(t), "date-time %r" % value
        if schema.get("type") == "object" and isinstance(value, dict):
            for k, v in value.items():
                check_formats(schema.get("properties", {}).get(k), v)

cases = json.load(sys.stdin)
bad = 0
for c in cases:
    try:
        value = json.loads(c["text"])
        jsonschema.validate(value, c["schema"], cls=jsonschema.Draft202012Validator,
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        check_formats(c["schema"], value)
    except Exception as e:
        bad += 1
        print("INVALID %s: %s\n  %r" % (c["name"], str(e)[:300], c["text"][:300]))
print("validated %d outputs, %d invalid" % (len(cases), bad))
sys.exit(1 if bad or not cases else 0)
