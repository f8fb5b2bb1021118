"""The hf-unlearn leaderboard: submissions, their store, ranking against Retrain, and verification.

* ``leaderboard.submission``: a submission (result records from ``hf_unlearn.results`` plus submitter
  metadata) and the validation of untrusted uploads;
* ``leaderboard.store``: one content-addressed JSON file per submission, written atomically, in a folder
  (``LocalStore``) optionally kept in a Hub dataset repo (``HubStore``, commits with ``parent_commit``);
* ``leaderboard.ranking`` / ``leaderboard.board``: seeds aggregated, gaps to Retrain on the same variant,
  shortfall and rank; the filtered, sorted table the Space shows;
* ``leaderboard.verify``: re-score a named checkpoint and compare with the claim;
* ``leaderboard.submit``: ``submit_file``, the library behind ``hf-unlearn submit``;
* ``leaderboard.plots``: the Space's two figures; ``leaderboard.demo``: synthetic records for tests.

Importing this package is light: no torch, gradio or evaluate.
"""

from leaderboard.submission import Submission, SubmissionError
from leaderboard.submit import SubmissionResult, submit_file

__all__ = ["Submission", "SubmissionError", "SubmissionResult", "submit_file"]
