#!/usr/bin/env python3
"""Renders every chat template in tests/data/chat_templates/ over a set of conversations with
Python's jinja2, exactly as Hugging Face transformers' apply_chat_template does (sandboxed
environment with trim_blocks and lstrip_blocks, HF's tojson, raise_exception, strftime_now, the
`generation` tag, loop controls, continue_final_message), and writes the expected outputs as
fixtures for chat_template_oracle_test.cpp:

  tests/data/chat_templates/cases.json           the conversations (inputs)
  tests/data/chat_templates/expected/<t>.json    {"<case>": {"output": "..."} | {"error": "..."}}

Usage: python3 tests/unit/chat_template/render_fixtures.py [--check]   (needs python3-jinja2)
  --check   write nothing; exit 1 when the committed fixtures differ from what jinja2 renders now
"""
import glob
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
DATA = os.path.normpath(os.path.join(ROOT, "tests", "data", "chat_templates"))
NOW = 1767323045  # 2026-01-02 03:04:05 UTC: what strftime_now sees (the C++ test uses the same)
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

CASES = {
    "user_only": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system_user": {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is paged attention?"},
        ]
    },
    "multi_turn": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke."},
        ]
    },
    "multi_turn_no_generation_prompt": {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
        "add_generation_prompt": False,
    },
    "empty_content": {
        "messages": [
            {"role": "user", "content": ""},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "Still there?"},
        ]
    },
    "non_ascii": {
        "messages": [
            {"role": "system", "content": "Réponds en français, s'il te plaît."},
            {"role": "user", "content": "Grüße aus 東京 🌸 — \"quotes\", back\\slash,\ttab\nnew line  "},
        ]
    },
    "text_parts": {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "First part."}, {"type": "text", "text": "Second part."}]}
        ]
    },
    "tools": {
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temperature\": 21}"},
        ],
        "tools": [WEATHER_TOOL],
    },
    "tools_no_system": {
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tools": [WEATHER_TOOL],
    },
    "thinking_off": {
        "messages": [{"role": "user", "content": "Quick answer: capital of Italy?"}],
        "template_kwargs": {"enable_thinking": False},
    },
    "continue_final_message": {
        "messages": [
            {"role": "user", "content": "Write a haiku."},
            {"role": "assistant", "content": "Pages of memory "},
        ],
        "add_generation_prompt": False,
        "continue_final_message": True,
    },
}


class AssistantTracker(Extension):
    """transformers' `{% generation %}` tag: renders its body (tracking is not needed here)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def compile_template(source):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.fromtimestamp(NOW, timezone.utc).strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def apply_chat_template(template, case):
    """transformers' render_jinja_template for one conversation, continue_final_message included."""
    messages = case["messages"]
    add_generation_prompt = case.get("add_generation_prompt", True)
    kwargs = {**SPECIAL_TOKENS, **case.get("template_kwargs", {})}
    rendered = template.render(
        messages=messages,
        tools=case.get("tools"),
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )
    if case.get("continue_final_message"):
        final_message = messages[-1]["content"]
        if isinstance(final_message, (list, tuple)):
            final_message = [part["text"] for part in final_message if "text" in part][-1]
        if final_message.strip() not in rendered:
            raise ValueError("continue_final_message: final message not found in the rendered chat")
        loc = rendered.rindex(final_message.strip())
        if rendered[loc : loc + len(final_message.lstrip())] == final_message:
            rendered = rendered[: loc + len(final_message.lstrip())]
        else:
            rendered = rendered[: loc + len(final_message.strip())]
    return rendered


def write_or_check(path, data, check, stale):
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    if check:
        # Outputs must match exactly; error messages may differ between jinja2 versions.
        def outcome(d):
            if isinstance(d, dict) and "error" in d and len(d) == 1:
                return "error"
            return {k: outcome(v) for k, v in d.items()} if isinstance(d, dict) else d

        try:
            with open(path, encoding="utf-8") as f:
                if outcome(json.load(f)) == outcome(data):
                    return
        except FileNotFoundError:
            pass
        stale.append(os.path.relpath(path, DATA))
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    write_or_check(os.path.join(DATA, "cases.json"), CASES, check, stale)
    os.makedirs(os.path.join(DATA, "expected"), exist_ok=True)
    paths = sorted(glob.glob(os.path.join(DATA, "*", "*.jinja")))
    counts = {"output": 0, "error": 0}
    for path in paths:
        name = os.path.relpath(path, DATA)[: -len(".jinja")].replace(os.sep, "__")
        with open(path, encoding="utf-8", newline="") as f:
            source = f.read()
        results = {}
        try:
            template = compile_template(source)
        except Exception as e:  # a template jinja2 cannot compile: every case is an error
            template = None
            compile_error = f"{type(e).__name__}: {e}"
        for case_name, case in CASES.items():
            if template is None:
                results[case_name] = {"error": compile_error}
                continue
            try:
                results[case_name] = {"output": apply_chat_template(template, case)}
            except Exception as e:
                results[case_name] = {"error": f"{type(e).__name__}: {e}"}
            counts["output" if "output" in results[case_name] else "error"] += 1
        write_or_check(os.path.join(DATA, "expected", name + ".json"), results, check, stale)
    print(f"{len(paths)} templates x {len(CASES)} cases: {counts['output']} rendered, {counts['error']} errors")
    if stale:
        print("stale fixtures (rerun without --check and commit): " + ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
