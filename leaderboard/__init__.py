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

The trust core (docs/leaderboard.md, "The trust model"):

* ``leaderboard.catalog``: the public variants, read from the maintainers' dataset cards
  (``LEADERBOARD_DATASETS``), because a rank means something only on a dataset everyone can load;
* ``leaderboard.references``: the No-unlearning and Retrain rows from the maintainers' file only, because whoever
  writes Retrain writes every rank;
* ``leaderboard.attest``: verification results signed for the submission's content hash, because the store is
  writable by others and a planted or moved "verified" must not count;
* ``leaderboard.names``: every shown string checked (NFKC, no invisible or bidi characters, ASCII names, reserved
  names), because people read the table and look-alikes must not pass for each other;
* ``leaderboard.safe_load``: a submitted checkpoint fetched and loaded as safetensors only, architecture pinned
  and sizes capped, because the checkpoint is the attacker's file;
* ``leaderboard.verify_worker``: one bounded verification queue with per-job timeouts, because scoring is
  expensive and must not be a denial-of-service lever.

Importing this package is light: no torch, gradio or evaluate.
"""

from leaderboard.submission import Submission, SubmissionError
from leaderboard.submit import SubmissionResult, submit_file

__all__ = ["Submission", "SubmissionError", "SubmissionResult", "submit_file"]
