"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
import gc

from annotate import create_app

app = create_app()
# What the app loaded lives as long as the worker. Out of the collector's reach, it no longer makes
# each full collection walk it: those walks stopped every thread of a worker for 90-120 ms, which
# bench/matching.py found behind its p99 (a few ms now).
gc.collect()
gc.freeze()
