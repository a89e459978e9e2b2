"""Model assistance without ORM or Flask: the built-in learner and the Label Studio ML backend client."""
