"""Typed deterministic built-ins callable from harness expressions (see registry.py)."""

from harnessc.builtins.registry import REGISTRY, Builtin, Registry, Signature, builtin, default_registry

__all__ = ["REGISTRY", "Builtin", "Registry", "Signature", "builtin", "default_registry"]
