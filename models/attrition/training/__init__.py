"""Training only (never imported by the server): the data, the features, the hyperparameter search,
training with its evaluation, and a release (train, bundle, register)."""

from attrition.training.search import CV_METRIC, Candidate, search_space, split
from attrition.training.train import TrainResult, train

__all__ = ["CV_METRIC", "Candidate", "TrainResult", "search_space", "split", "train"]
