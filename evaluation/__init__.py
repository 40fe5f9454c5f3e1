"""Model evaluation: predictions against a release's factor labels (the paper's section 4)."""
