"""What tests share besides factories and fixtures (``tests/conftest.py``): one of each.

- ``ports.free_port``: a port nothing listens on (``closed_port_url`` for a refused one);
- ``totp.TotpClock``: a frozen TOTP clock for the verifier and the codes alike
  (fixture ``totp_clock``), so no test waits for a 30-second step;
- ``login.api_login``: ``POST /api/auth/login`` as a fresh client;
- ``redis.FakeRedis``: a scriptable RESP server;
- ``reset.fresh_process``: the per-process memos and caches a test starts without (the
  autouse fixture of ``tests/conftest.py`` calls it).
"""
