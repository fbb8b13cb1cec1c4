"""Built-in Stora and nodestash simulators: the embedded default for demo, tests and benchmarks."""

from __future__ import annotations

DEFAULT_STORA_TOKEN = "sandbox-stora-token"
DEFAULT_NODESTASH_TOKEN = "nds_test_sandbox"


def build_sandbox(
    *,
    seed: str = "demo",
    stora_token: str = DEFAULT_STORA_TOKEN,
    nodestash_token: str = DEFAULT_NODESTASH_TOKEN,
):
    """A ``Sandbox`` holding both simulators, seeded. Serve it with ``SandboxServer``."""
    from dealdesk.sandbox.core import Sandbox
    from dealdesk.sandbox.nodestash import NodestashSimulator
    from dealdesk.sandbox.stora import StoraSimulator

    return Sandbox(
        [StoraSimulator(token=stora_token), NodestashSimulator(token=nodestash_token)], seed=seed
    )


def start_sandbox_server(*, port: int = 0, seed: str = "demo", **tokens):
    """Build and start a sandbox on loopback; returns the running ``SandboxServer``."""
    from dealdesk.sandbox.core import SandboxServer

    return SandboxServer(build_sandbox(seed=seed, **tokens), port=port).start()
