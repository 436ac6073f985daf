"""The gateway's platform views: /api/services (``services``), /health and /metrics
(``monitoring``). The proxied call itself is ``gateway.proxy``."""
