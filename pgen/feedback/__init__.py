"""Reviewers in the loop: the review page and its server, the ratings database, the
acceptance model learned from ratings, and simulated reviewers for tests and benchmarks."""
