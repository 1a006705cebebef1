"""Test support shared by the suites (on ``sys.path`` through pytest's ``pythonpath``).

- ``inproc``: node apps in one process over ``httpx.ASGITransport``, with fixed keys.
- ``inproc_world``: a seeded three-city world on those nodes.
- ``world_fixtures``: the pytest fixtures over that world (integration and security tests).
- ``synthetic``: deterministic synthetic drafts from the simulator's workload model.
- ``served``: a node app behind uvicorn on a real socket, configured as ``python -m node``.
- ``cli``: ``creditchain`` run in process: exit code, stdout, stderr.
"""
