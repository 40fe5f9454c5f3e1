"""The dataset explorer: browse a dataset's images with their final answer and curated top
factor, filtered (filters.py), paginated by image id (selectors.py), for reviewers, maintainers
and researchers (views.py). `register_filter` lets another app add a filter."""

from curation.explorer.filters import ExtraFilter, register_filter

__all__ = ["ExtraFilter", "register_filter"]
