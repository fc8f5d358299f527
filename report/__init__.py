"""Readers and writers of results for people (tables, figures): used by the jobs (training/)
and the app (app/), never by the library (a ruff rule: the library never imports report/)."""
