"""The accounts API's views, one module per area: ``auth`` (/api/auth/...), ``sessions``
(/api/auth/sessions), ``users`` (/api/users), ``audit`` (/api/audit) and ``wellknown``
(/.well-known/)."""
