"""Reads of the dataset explorer: one filtered, keyset-paginated page of a dataset's images with
their final answer and curated top factor, and everything one image's detail page shows.

A page costs a fixed number of queries whatever its size: the count, the page's ids, then the
images, answers and curated rows of those ids (one query each).

Why raw SQL around review's rule: the final answer of an image is review's rule
(`review.selectors.final_annotations`, a window query ranking each image's answers). Filters on
the final answer's factors or text must apply *after* that ranking; chained onto the queryset
Django would put them inside it (ranking only the matching answers, which can promote a
non-final one). So the rule's own SQL becomes a subquery `f` and the filters apply to its rows
outside. Filters on the image itself (split, class, meta-label, annotator, extra filters) go
inside, where they keep the ranking small; a bound on the image id is pushed down by
PostgreSQL, so a page streams through the image-id index and stops after `per` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass
from curation.explorer.filters import ExplorerQuery, extra_filters
from curation.models import CuratedImage, CurationRun
from infra.errors import DomainError, NotFound
from review.selectors import final_annotations, image_answers, timeline

TS_CONFIG = "english"


def latest_done_run(dataset_id: int) -> CurationRun | None:
    """The dataset's most recent finished curation run (its top factors are the curated ones)."""
    return (
        CurationRun.objects.filter(dataset_id=dataset_id, status=CurationRun.Status.DONE)
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .first()
    )


def resolve_run(dataset: Dataset, query: ExplorerQuery) -> CurationRun | None:
    if query.run_id is None:
        run = latest_done_run(dataset.pk)
    else:
        run = CurationRun.objects.filter(pk=query.run_id, dataset=dataset).first()
        if run is None:
            raise NotFound(f"Dataset {dataset.slug} has no curation run {query.run_id}.")
        if run.status != CurationRun.Status.DONE:
            raise DomainError(f"Curation run {run.pk} is {run.status}; the explorer reads finished runs.", field="run")
    if query.basis == "run" and run is None:
        raise DomainError("basis=run needs a finished curation run of this dataset.", field="basis")
    return run


# --- the SQL of one page -------------------------------------------------------------------
def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _subquery(ids: Any) -> tuple[str, list]:
    """SQL `IN (...)` operand for a queryset of ids (kept a subquery) or an iterable of ints."""
    if isinstance(ids, QuerySet):
        sql, params = ids.query.sql_with_params()
        return sql, list(params)
    values = [int(v) for v in ids]
    if not values:
        return "SELECT NULL WHERE 1 = 0", []
    return ", ".join(["%s"] * len(values)), values


def _text_condition(alias: str, text: str) -> tuple[str, list]:
    doc = f"({alias}.{_q('justification')} || ' ' || {alias}.{_q('one_word')})"
    if connection.vendor == "postgresql":
        # The same expression as the GIN indexes (catalog 0005, curation 0003).
        return f"to_tsvector('{TS_CONFIG}'::regconfig, {doc}) @@ websearch_to_tsquery('{TS_CONFIG}'::regconfig, %s)", [
            text
        ]
    # Embedded fallback (SQLite): every word must appear, case-insensitively (ASCII), as a substring.
    words = text.split()
    parts, params = [], []
    for w in words:
        parts.append(f"{doc} LIKE %s ESCAPE '\\'")
        params.append("%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return " AND ".join(parts) or "1 = 1", params


@dataclass
class _Sql:
    from_sql: str
    params: list
    where: list[str] = field(default_factory=list)
    where_params: list = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> None:
        self.where.append(sql)
        self.where_params.extend(params)

    def add_many(self, sql: str, params: list) -> None:
        self.where.append(sql)
        self.where_params.extend(params)


def _image_restrictions(dataset: Dataset, query: ExplorerQuery) -> tuple[QuerySet[Image], bool]:
    """Image-level filters as one queryset of images, and whether it restricts anything."""
    qs = Image.objects.filter(dataset_id=dataset.pk)
    restricted = False
    if query.class_index is not None:
        qs = qs.filter(image_class__index=query.class_index)
        restricted = True
    if query.meta_label and query.basis == "final":
        qs = qs.filter(image_class__meta_label=query.meta_label)
        restricted = True
    if query.annotator:
        qs = qs.filter(id__in=Annotation.objects.filter(annotator__username=query.annotator).values("image_id"))
        restricted = True
    if query.min_answers is not None:
        # Every annotator's answer counts, superseded ones included (as the datasheet's multi-review).
        multi = (
            Annotation.objects.filter(source="user", image__dataset_id=dataset.pk)
            .values("image_id")
            .annotate(n=Count("id"))
            .filter(n__gte=query.min_answers)
            .values("image_id")
        )
        qs = qs.filter(id__in=multi)
        restricted = True
    filters = extra_filters()
    for key, value in query.extra:
        qs = qs.filter(id__in=filters[key].image_ids(dataset.pk, value))
        restricted = True
    if query.image_ids is not None:
        qs = qs.filter(id__in=query.image_ids)
        restricted = True
    return qs, restricted


# A factor filter is pushed into the ranking (see _answer_superset) when fewer than this share
# of the images match it: for a common factor, streaming through the image-id order finds a
# page sooner than ranking every candidate first.
PUSH_BELOW_SHARE = 0.2


def _factor_share(query: ExplorerQuery, run: CurationRun | None) -> float:
    """Share of the images that the factor filter keeps, estimated from the run's counts (1.0 unknown)."""
    shares = ((run.stats or {}).get("factor_counts", {}).get("all", {}).get("selected_share")) if run else None
    if not shares:
        return 0.0  # no estimate: push (never slower than a full scan by much)
    values = [float(shares.get(k, 0.0)) for k in query.factors]
    if query.mode == "all":
        return min(values)
    return min(1.0, sum(values))


def _answer_superset(query: ExplorerQuery, run: CurationRun | None, *, for_count: bool) -> QuerySet[Annotation] | None:
    """Answers matching the answer-level filters, whatever their rank.

    The images of the final answers that match are among the images of these answers, so the
    ranking can be limited to them (the exact filters still apply to the final rows). For a rare
    factor or a word search this cuts the ranking from every image to a few hundred. A count
    ranks every candidate anyway, so there every filter is pushed; a page only pushes what is rare.
    """
    conds = Q()
    if query.factors and (for_count or _factor_share(query, run) < PUSH_BELOW_SHARE):
        parts = [Q(**{k: True}) for k in query.factors]
        combined = parts[0]
        for p in parts[1:]:
            combined = (combined & p) if query.mode == "all" else (combined | p)
        conds &= combined
    if query.ref_top == "any":
        conds &= ~Q(reference_top_factor="")
    elif query.ref_top and query.ref_top != "none":
        conds &= Q(reference_top_factor=query.ref_top)
    if query.status in ("consensus", "user") or (query.status == "imported" and for_count):
        conds &= Q(source=query.status)
    elif query.status and query.status != "imported":
        conds &= Q(source="user", status=query.status)
    qs = Annotation.objects.filter(conds) if conds else None
    if query.q and connection.vendor == "postgresql":
        cond, params = _text_condition("x", query.q)
        # A self-contained subquery (its own alias x): raw SQL naming catalog_annotation here
        # would bind to the ranking query's own table and become correlated.
        matching = RawSQL(f"SELECT x.{_q('id')} FROM {_q(Annotation._meta.db_table)} x WHERE {cond}", params)
        qs = (qs if qs is not None else Annotation.objects.all()).filter(id__in=matching)
    return qs


# Columns of the final answer that the filters read outside the ranking (no join back needed).
_FINAL_COLUMNS = (
    "id",
    "image_id",
    *FACTOR_KEYS,
    "justification",
    "one_word",
    "source",
    "status",
    "reference_top_factor",
)


def _build(dataset: Dataset, query: ExplorerQuery, run: CurationRun | None, *, for_count: bool = False) -> _Sql:
    ann, cur = (_q(m._meta.db_table) for m in (Annotation, CuratedImage))
    images, restricted = _image_restrictions(dataset, query)
    if query.basis == "final":
        answers = _answer_superset(query, run, for_count=for_count)
        if answers is not None:
            images = images.filter(id__in=answers.values("image_id"))
            restricted = True
        final = final_annotations(
            dataset_id=dataset.pk, split=query.split or None, image_ids=images.values("id") if restricted else None
        ).values(*_FINAL_COLUMNS)
        fsql, fparams = final.query.sql_with_params()
        from_sql = f"({fsql}) f"
        params = list(fparams)
        if run is not None:
            from_sql += f" LEFT JOIN {cur} ci ON ci.{_q('run_id')} = %s AND ci.{_q('image_id')} = f.{_q('image_id')}"
            params.append(run.pk)
        else:
            from_sql += f" LEFT JOIN {cur} ci ON 1 = 0"
        sql = _Sql(from_sql, params)
        src = ans = "f"
    else:
        assert run is not None
        from_sql = f"{cur} ci LEFT JOIN {ann} a ON a.{_q('id')} = ci.{_q('annotation_id')}"
        sql = _Sql(from_sql, [])
        sql.add(f"ci.{_q('run_id')} = %s", run.pk)
        if query.split:
            sql.add(f"ci.{_q('split')} = %s", query.split)
        if query.meta_label:
            sql.add(f"ci.{_q('meta_label')} = %s", query.meta_label)
        if restricted:
            isql, iparams = _subquery(images.values("id"))
            sql.add_many(f"ci.{_q('image_id')} IN ({isql})", iparams)
        src, ans = "ci", "a"
    sql.key = f"{'f' if query.basis == 'final' else 'ci'}.{_q('image_id')}"  # type: ignore[attr-defined]
    sql.ann_id = f"{ans}.{_q('id')}"  # type: ignore[attr-defined]

    flags = [f"{src}.{_q(k)}" for k in query.factors]
    if flags:
        sql.add("(" + (" AND " if query.mode == "all" else " OR ").join(flags) + ")")
    if query.nf_min is not None or query.nf_max is not None:
        n = " + ".join(f"CASE WHEN {src}.{_q(k)} THEN 1 ELSE 0 END" for k in FACTOR_KEYS)
        if query.nf_min is not None:
            sql.add(f"({n}) >= %s", query.nf_min)
        if query.nf_max is not None:
            sql.add(f"({n}) <= %s", query.nf_max)
    if query.top == "none":
        sql.add(f"(ci.{_q('id')} IS NULL OR ci.{_q('top_factor')} = '')")
    elif query.top:
        sql.add(f"ci.{_q('top_factor')} = %s", query.top)
    ref = f"{ans}.{_q('reference_top_factor')}"
    if query.ref_top == "none":
        sql.add(f"({ref} IS NULL OR {ref} = '')")
    elif query.ref_top == "any":
        sql.add(f"{ref} <> ''")
    elif query.ref_top:
        sql.add(f"{ref} = %s", query.ref_top)
    if query.agrees == "yes":
        sql.add(f"{ref} <> '' AND ci.{_q('top_factor')} = {ref}")
    elif query.agrees == "no":
        sql.add(f"{ref} <> '' AND ci.{_q('top_factor')} <> {ref}")
    if query.top_source == "none":
        sql.add(f"(ci.{_q('id')} IS NULL OR ci.{_q('top_factor_source')} = '')")
    elif query.top_source:
        sql.add(f"ci.{_q('top_factor_source')} = %s", query.top_source)
    if query.no_vector:
        sql.add(f"ci.{_q('text_has_vector')} = %s", False)
    if query.status:
        if query.status in ("consensus", "imported", "user"):
            sql.add(f"{ans}.{_q('source')} = %s", query.status)
        else:
            sql.add(f"{ans}.{_q('source')} = 'user' AND {ans}.{_q('status')} = %s", query.status)
    if query.q:
        cond, params = _text_condition(src, query.q)
        sql.add_many(cond, params)
    return sql


def _run_sql(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@dataclass
class Row:
    image: Image
    annotation: Annotation | None  # the image's final answer now
    curated: CuratedImage | None  # the run's result for the image
    factors: list[str]  # what the filters read (final answer, or the run's snapshot)
    justification: str
    one_word: str
    changed_since_run: bool = False


@dataclass
class Page:
    query: ExplorerQuery
    run: CurationRun | None
    count: int | None
    rows: list[Row]
    next_after: int | None
    prev_before: int | None


def _prepare(dataset: Dataset, query: ExplorerQuery) -> CurationRun | None:
    run = resolve_run(dataset, query)
    for key, _ in query.extra:
        if key not in extra_filters():
            raise DomainError(f"Unknown filter {key!r}.", field=key)
    return run


def _no_jit() -> None:
    if connection.vendor == "postgresql":
        # The estimated cost of the window query over every answer is large even when the plan
        # streams a few rows; JIT compilation would then cost ~70 ms per query for nothing.
        _run_sql("SET LOCAL jit = off", [])


def _count(dataset: Dataset, query: ExplorerQuery, run: CurationRun | None) -> int:
    sql = _build(dataset, query, run, for_count=True)
    where = " AND ".join(sql.where) or "1 = 1"
    return _run_sql(f"SELECT COUNT(*) FROM {sql.from_sql} WHERE {where}", [*sql.params, *sql.where_params])[0][0]


def explorer_count(*, dataset: Dataset, query: ExplorerQuery) -> int:
    """How many images match (all pages). On the final answers this ranks every candidate
    image's answers (a few hundred ms on the 60k import when most images match), so the gallery
    asks for it apart from the page; on a run's snapshot it is cheap and comes with the page."""
    run = _prepare(dataset, query)
    with transaction.atomic():
        _no_jit()
        return _count(dataset, query, run)


def explorer_page(*, dataset: Dataset, query: ExplorerQuery, with_count: bool | None = None) -> Page:
    """One page of images matching `query`, in image-id order (the catalogue order, stable).

    `with_count`: also count every match (default: only on a run's snapshot, where it is cheap;
    Page.count is None otherwise and explorer_count gives it).
    """
    run = _prepare(dataset, query)
    sql = _build(dataset, query, run)
    if with_count is None:
        with_count = query.basis == "run"
    key = sql.key  # type: ignore[attr-defined]
    where = " AND ".join(sql.where) or "1 = 1"
    base_params = [*sql.params, *sql.where_params]
    page_where, page_params = where, list(base_params)
    if query.after is not None:
        page_where += f" AND {key} > %s"
        page_params.append(query.after)
    if query.before is not None:
        page_where += f" AND {key} < %s"
        page_params.append(query.before)
    direction = "DESC" if query.before is not None else "ASC"
    count = None
    with transaction.atomic():
        _no_jit()
        if with_count:
            count = _count(dataset, query, run)
        ids = _run_sql(
            f"SELECT {key}, {sql.ann_id} FROM {sql.from_sql} WHERE {page_where} ORDER BY {key} {direction} LIMIT %s",
            [*page_params, query.per + 1],
        )
    more = len(ids) > query.per
    ids = ids[: query.per]
    if query.before is not None:
        ids.reverse()
    rows = _hydrate(dataset, query, run, ids)
    first, last = (ids[0][0], ids[-1][0]) if ids else (None, None)
    if query.before is not None:
        next_after, prev_before = last, (first if more else None)
    else:
        next_after = last if more else None
        prev_before = first if (query.after is not None and ids) else None
    return Page(query=query, run=run, count=count, rows=rows, next_after=next_after, prev_before=prev_before)


def _hydrate(dataset: Dataset, query: ExplorerQuery, run: CurationRun | None, ids: list[tuple]) -> list[Row]:
    if not ids:
        return []
    image_ids = [i for i, _ in ids]
    images = Image.objects.select_related("image_class").in_bulk(image_ids)
    curated = (
        {c.image_id: c for c in CuratedImage.objects.filter(run=run, image_id__in=image_ids)} if run is not None else {}
    )
    if query.basis == "final":
        answers = Annotation.objects.select_related("annotator").in_bulk([a for _, a in ids])
        final = {i: answers.get(a) for i, a in ids}
    else:
        final = {
            a.image_id: a
            for a in final_annotations(dataset_id=dataset.pk, image_ids=image_ids).select_related("annotator")
        }
    rows = []
    for image_id, _ in ids:
        ans, cur = final.get(image_id), curated.get(image_id)
        shown = ans if query.basis == "final" else cur
        changed = False
        if query.basis == "run" and cur is not None:
            changed = ans is None or ans.pk != cur.annotation_id or (ans.updated_at > run.finished_at)
        rows.append(
            Row(
                image=images[image_id],
                annotation=ans,
                curated=cur,
                factors=[k for k in FACTOR_KEYS if shown is not None and getattr(shown, k)],
                justification=shown.justification if shown is not None else "",
                one_word=shown.one_word if shown is not None else "",
                changed_since_run=changed,
            )
        )
    return rows


# --- choices for the filter form ---------------------------------------------------------------
def filter_choices(dataset: Dataset) -> dict[str, Any]:
    return {
        "classes": list(ImageClass.objects.filter(dataset=dataset).order_by("index").values_list("index", "name")),
        "runs": list(
            CurationRun.objects.filter(dataset=dataset, status=CurationRun.Status.DONE)
            .order_by(F("finished_at").desc(nulls_last=True), "-id")
            .values_list("id", "finished_at")[:20]
        ),
    }


# --- one image ---------------------------------------------------------------------------------
@dataclass
class ImageDetail:
    image: Image
    final: Annotation | None
    versions: list[AnnotationVersion]
    answers: list[Annotation]
    events: list[Any]
    curated: CuratedImage | None
    other_runs: list[CuratedImage]
    prototypes: list[Image]
    prototype_run: Any


def image_detail(*, dataset: Dataset, image_id: int, run: CurationRun | None) -> ImageDetail:
    from prototypes.selectors import prototypes_for_class

    image = Image.objects.select_related("image_class", "dataset").filter(dataset=dataset, pk=image_id).first()
    if image is None:
        raise NotFound(f"Dataset {dataset.slug} has no image {image_id}.")
    final = final_annotations(dataset_id=dataset.pk, image_ids=[image.pk]).select_related("annotator").first()
    versions = (
        list(AnnotationVersion.objects.filter(annotation=final).select_related("author").order_by("version"))
        if final is not None
        else []
    )
    curated_all = list(
        CuratedImage.objects.filter(image=image, run__status=CurationRun.Status.DONE)
        .select_related("run")
        .order_by(F("run__finished_at").desc(nulls_last=True), "-run_id")
    )
    curated = next((c for c in curated_all if run is not None and c.run_id == run.pk), None)
    proto_run, protos = prototypes_for_class(image.image_class, k=3)
    return ImageDetail(
        image=image,
        final=final,
        versions=versions,
        answers=image_answers(image),
        events=list(timeline(image)),
        curated=curated,
        other_runs=[c for c in curated_all if c is not curated],
        prototypes=protos,
        prototype_run=proto_run,
    )


def annotator_exists(username: str) -> bool:
    return get_user_model().objects.filter(username=username).exists()
