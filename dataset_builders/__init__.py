"""One module per Hub dataset: each builds its Hub-layout folder and can push it."""
