"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
from annotate import create_app

app = create_app()
