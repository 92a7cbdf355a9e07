"""Jinja2 oracle for rl::text::RenderChatMl: renders conversations with a chat template file
the way transformers' apply_chat_template does (sandboxed environment, trim_blocks,
lstrip_blocks). Usage: render_chat_template.py TEMPLATE CASES_JSON; CASES_JSON holds
[{"messages": [...], "add_generation_prompt": bool}, ...]; prints a JSON array of strings.
Exit status 77 when jinja2 is not installed (the caller reports a skip)."""
import json
import sys

try:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed for", sys.executable, file=sys.stderr)
    sys.exit(77)

with open(sys.argv[1], encoding="utf-8") as f:
    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(f.read())
with open(sys.argv[2], encoding="utf-8") as f:
    cases = json.load(f)
print(json.dumps([template.render(messages=c["messages"],
                                  add_generation_prompt=c["add_generation_prompt"])
                  for c in cases]))
