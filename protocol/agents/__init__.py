"""Long-running agents: the solver and verifier daemons and the submitter client.

Each is a separate process that talks only to the chain (JSON-RPC) and an artifact store. A daemon
is a loop over a persisted block cursor (:mod:`protocol.agents.watcher`) plus small state machines
per task and per game whose every transition is decided from on-chain state and recorded in sqlite
(:mod:`protocol.agents.db`) before it is sent, so a daemon killed at any moment resumes where it
was and never sends the same action twice.
"""
