"""A keyword-rule sentiment model for the ML backend tests, written the way a
Label Studio user writes one: a `LabelStudioMLBase` subclass.

It runs in the separate venv with label-studio-ml 1.0.9 (see server.py),
never in ours. It appends what it receives from /setup and from training
events to the JSON-lines file named by TEST_MODEL_RECORD, for the tests to
read. Task texts that make it misbehave on purpose:

- "__wrong_count__": one prediction too many for the request.
- "__first_only__": a prediction for the request's first task only, like a
  backend that cannot take batches.
- "__no_version__": predictions without their own model_version.
"""

import json
import os

from label_studio_ml.model import LabelStudioMLBase

POSITIVE_WORDS = ("good", "great")


def record(kind, **fields):
    # Training runs in processes forked per webhook; appending one short line
    # per write keeps their records whole.
    with open(os.environ["TEST_MODEL_RECORD"], "a") as f:
        f.write(json.dumps({"kind": kind, **fields}) + "\n")


class KeywordSentiment(LabelStudioMLBase):
    # 1.0.9 does not train on START_TRAINING (newer label-studio-ml does).
    TRAIN_EVENTS = LabelStudioMLBase.TRAIN_EVENTS + ("START_TRAINING",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # /setup builds the model with what it was sent; training jobs without.
        if "hostname" in kwargs:
            record("setup", label_config=self.label_config, hostname=kwargs["hostname"],
                   access_token=kwargs["access_token"], model_version=kwargs.get("model_version"))
        # After training, 1.0.9 hands the latest job's result in as train_output.
        self.version = "keywords-" + str(self.train_output.get("job_id", "initial"))

    def predict(self, tasks, **kwargs):
        from_name, info = next(iter(self.parsed_label_config.items()))
        texts = [task["data"]["text"] for task in tasks]
        predictions = []
        for text in texts:
            positive = any(word in text.lower().split() for word in POSITIVE_WORDS)
            prediction = {
                "result": [{
                    "from_name": from_name,
                    "to_name": info["to_name"][0],
                    "type": "choices",
                    "value": {"choices": ["Positive" if positive else "Negative"]},
                }],
                "score": 0.9 if positive else 0.6,
                "model_version": self.version,
            }
            if "__no_version__" in texts:
                del prediction["model_version"]
            predictions.append(prediction)
        if "__wrong_count__" in texts:
            predictions.append(predictions[-1])
        if "__first_only__" in texts:
            predictions = predictions[:1]
        return predictions

    def fit(self, tasks, workdir=None, **kwargs):
        event, data = kwargs["event"], kwargs["data"]
        record("fit", event=event, job_id=kwargs["job_id"], project=data["project"],
               annotation=data.get("annotation"), task=data.get("task"))
        return {"trained_on": event}
