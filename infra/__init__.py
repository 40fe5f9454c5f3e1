"""What several stages use and none owns, below catalog in the import graph.

errors (the one domain error type and its DRF handler), roles (groups and the checks every
page and endpoint makes), bulkcopy (PostgreSQL COPY insert), embeddings (spaCy mean word
vectors, no Django), enqueue (Celery tasks sent by name once the transaction commits).
Nothing here knows about a stage: no import of catalog, prototypes, annotator, review,
curation, exports or evaluation.
"""
