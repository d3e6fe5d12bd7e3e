"""sg-agent: the per-host daemon that keeps this host's services alive in the group."""

from agent.daemon import Agent

__all__ = ["Agent"]
