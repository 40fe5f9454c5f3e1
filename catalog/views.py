from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from catalog import selectors


@login_required
def home(request):
    return render(request, "catalog/home.html", {"datasets": selectors.dataset_summaries()})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True, "database": connection.vendor})
