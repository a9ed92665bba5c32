"""Cleo commands: thin layers that read options, resolve Settings, call a flow and render."""
