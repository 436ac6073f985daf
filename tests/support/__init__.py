"""What tests share besides factories and fixtures (``tests/conftest.py``): one of each.

- ``ports.free_port``: a port nothing listens on (``closed_port_url`` for a refused one);
- ``totp.TotpClock``: a frozen TOTP clock for the verifier and the codes alike
  (fixture ``totp_clock``), so no test waits for a 30-second step;
- ``login.api_login``: ``POST /api/auth/login`` as a fresh client;
- ``upstream.FakeUpstream``: the one fake HTTP/1.1 upstream, scripted with raw bytes or
  a function of the parsed request (``PathUpstream``: answers by path), plain or TLS;
- ``redis.FakeRedis``: a scriptable RESP server (both on ``ports.RawServer``);
- ``mail.BROKEN_BACKEND``: a mail server that is down;
- ``reset.fresh_process``: the per-process memos and caches a test starts without (the
  autouse fixture of ``tests/conftest.py`` calls it).
"""
