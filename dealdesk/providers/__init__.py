"""The only code that speaks HTTP to Stora or nodestash. ``adapter_for`` picks the adapter
from the registry (``registry.py``)."""

from __future__ import annotations

from dealdesk.providers.registry import adapter_for

__all__ = ["adapter_for"]
