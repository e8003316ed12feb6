"""Loopback fakes of the services the package talks to, speaking their real formats over real HTTP."""
