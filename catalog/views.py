from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render

from catalog import selectors
from infra.roles import Role, has_role


@login_required
def home(request):
    # A researcher's first screen is the evaluation page ("where does my model fail"), unless the
    # account also works on annotations.
    if has_role(request.user, Role.RESEARCHER) and not has_role(request.user, Role.ANNOTATOR, Role.REVIEWER):
        return redirect("evaluation:index")
    return render(request, "catalog/home.html", {"datasets": selectors.dataset_summaries()})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True, "database": connection.vendor})
