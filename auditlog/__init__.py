"""The audit log: an append-only record of security-relevant actions, below every app
that writes it (accounts, organizations, gateway, portal). ``auditlog.audit.record``
writes one event; who may read which events is ``organizations.scoping``'s."""
