"""Host scripts that run inside an isolated venv with one pinned wasmtime version (stdlib + wasmtime only)."""
