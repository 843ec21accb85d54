"""Plugins for the tests: installed into a test's environment (tests.e2e.test_plugins) and
found through their entry points, as any plugin is."""

from __future__ import annotations

from heron_plugins.manifest import Manifest

tester = Manifest(
    name="tester",
    version="1.2.0",
    description="Greets.",
    author="Heron tests",
    permissions=("tester.use",),
    routes=({"method": "GET", "path": "/hello", "permission": "tester.use"},),  # type: ignore[arg-type]
    hooks=({"event": "content:beforeCreate", "priority": 10},),  # type: ignore[arg-type]
    settings_schema={
        "type": "object",
        "properties": {
            "greeting": {"type": "string", "maxLength": 40, "default": "hello"},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3},
            "api_key": {"type": "string", "minLength": 8, "writeOnly": True},
        },
        "additionalProperties": False,
    },
)

needs_tester = Manifest(name="needs-tester", version="0.1.0", dependencies={"tester": ">=1.0,<2"})

needs_new_tester = Manifest(
    name="needs-new-tester", version="0.1.0", dependencies={"tester": ">=2"}
)

bad_manifest = {"name": "bad-manifest", "version": "not a version"}
