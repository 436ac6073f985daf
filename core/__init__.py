"""The kernel every app needs: the one error format, client addresses and sockets, the
cache client and its outage rule, request context, logging, middleware, list filters and
pagination, mails and the roles vocabulary. It imports no app; every app may import it."""
