"""A minimal Django project for the benchmark's Django peers: (b) django-revproxy and
(c) a bare view. No database, no middleware: it gives both their best case."""
