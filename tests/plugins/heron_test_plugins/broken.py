"""A plugin whose import fails: listed with status `error`, never fatal."""

raise RuntimeError("this plugin is broken on purpose")
