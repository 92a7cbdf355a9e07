"""Jinja2 oracle for rl::text's chat templates: renders conversations the way transformers'
apply_chat_template does (sandboxed environment, trim_blocks, lstrip_blocks, the special tokens
of tokenizer_config.json as variables, tools=None, its `tojson` filter). Usage:
render_chat_template.py TEMPLATE CASES_JSON, where TEMPLATE is a .jinja file or a
tokenizer_config.json (its chat_template); CASES_JSON holds
[{"messages": [...], "add_generation_prompt": bool, "enable_thinking": bool (optional),
"date_string": str (optional)}, ...];
prints a JSON array of strings. Exit status 77 when jinja2 is not installed (the caller
reports a skip)."""
import json
import sys

try:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed for", sys.executable, file=sys.stderr)
    sys.exit(77)


def token_text(value):
    # Older tokenizer_config.json files write special tokens as AddedToken objects.
    return value.get("content") if isinstance(value, dict) else value


with open(sys.argv[1], encoding="utf-8") as f:
    source = f.read()
variables = {}
if sys.argv[1].endswith(".json"):
    config = json.loads(source)
    source = config["chat_template"]
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        if config.get(key) is not None:
            variables[key] = token_text(config[key])
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces Jinja2's HTML-safe tojson with plain json.dumps.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.filters["tojson"] = tojson
template = env.from_string(source)
with open(sys.argv[2], encoding="utf-8") as f:
    cases = json.load(f)
out = []
for c in cases:
    extra = {k: c[k] for k in ("enable_thinking", "date_string") if k in c}
    out.append(template.render(messages=c["messages"], tools=None,
                               add_generation_prompt=c["add_generation_prompt"],
                               **variables, **extra))
print(json.dumps(out))
