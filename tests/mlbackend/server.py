"""Serve model.py with label-studio-ml's own app factory, as its generated
_wsgi.py does: `python server.py --port N --model-dir DIR`, in the separate
venv (conftest.py starts it). Listens on 127.0.0.1 only.
"""

import argparse
import logging
import os

from label_studio_ml.api import init_app

from model import KeywordSentiment


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-dir", required=True)
    args = parser.parse_args()
    os.environ.setdefault("TEST_MODEL_RECORD", os.path.join(args.model_dir, "received.jsonl"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Without a model dir, 1.0.9's training jobs have nowhere to write and fail.
    app = init_app(model_class=KeywordSentiment, model_dir=args.model_dir)
    app.run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
